"""`mipai-box run`: start the box daemon. `mipai-box demo`: the same, on embedded defaults, with a sample job."""

import asyncio
import contextlib
import io
import logging
import os
import socket
import sys
import time
from importlib import resources

from box import data_dir
from box.cli import demo_broker, printer_options
from box.daemon import Daemon
from box.jobs import demo_sample
from box.jobs.spool import Spool
from box.jobs.store import Store
from box.settings import Settings, SettingsError
from firmware_bridge.virtual_printer import VirtualPrinterProcess
from provisioning import identity
from secure_print import seal
from secure_print.license import License
from secure_print.signer_key import SignerKey, write_secret_file
from secure_print.trust import TrustStore
from wire import keytext

PROGRAM = "mipai-box run"
DEMO_DESIGNER_KEY = "demo-designer.key"
DEMO_OPERATOR_KEY = "demo-operator.key"


def add_arguments(parser, _common) -> None:
    parser.add_argument("--config", help="settings file (TOML); defaults are used for anything it does not set")
    parser.add_argument("--http-port", type=int, help="port of the web app (default: the settings', 8080)")
    parser.add_argument(
        "--virtual-printer", action="store_true", help="start a virtual printer and use it as the box's printer"
    )


def add_demo_arguments(parser, _common) -> None:
    parser.add_argument("--http-port", type=int, default=8080, help="port of the web app (default: %(default)s)")


def _serve(root: str, settings: Settings, http_port, virtual_printer_args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    with contextlib.ExitStack() as stack:
        values = settings.as_dict()
        values["printer"]["scan"] = list(values["printer"]["scan"])
        if http_port is not None:
            values["box"]["http_port"] = http_port
        if virtual_printer_args is not None:
            printer = stack.enter_context(VirtualPrinterProcess(*virtual_printer_args))
            values["printer"]["port"] = printer.path
        try:
            settings = Settings.from_mapping(values, "the command line")
        except SettingsError as exc:
            print("%s: %s" % (PROGRAM, exc), file=sys.stderr)
            return 2
        return asyncio.run(Daemon(root, settings).run())


def run(args) -> int:
    try:
        settings = Settings.load(args.config)
    except SettingsError as exc:
        print("%s: %s" % (PROGRAM, exc), file=sys.stderr)
        return 2
    virtual = printer_options.QUICK_VIRTUAL_PRINTER if args.virtual_printer else None
    return _serve(data_dir.prepare(args.data_dir), settings, args.http_port, virtual)


def queue_demo_job(root: str) -> tuple:
    """Make (once) a demo designer key trusted by this box, seal the bundled sample for the box and keep it held
    for the owner's first dashboard visit; once per data directory. Returns (job number, queued now)."""
    store = Store(os.path.join(root, "box.sqlite"))
    try:
        number = demo_sample.queued_sample(store)
    finally:
        store.close()
    if number is not None:
        return number, False
    box = identity.load_or_create(root)
    key_path = os.path.join(root, DEMO_DESIGNER_KEY)
    if not os.path.exists(key_path):
        write_secret_file(key_path, SignerKey.generate(keytext.DESIGNER).to_text().encode())
    designer = SignerKey.load(key_path)
    trust = TrustStore(data_dir.trust_file(root))
    if not any(entry["key"] == designer.public_text for entry in trust.entries):
        trust.add(designer.public_text, "demo designer")
    job_id, license_id, seed = seal.new_ids()
    now = int(time.time())
    terms = License(license_id, job_id, designer.public_text, [box.box_id], None, now - 60, now + 86400 * 365,
                    seed, title="Sample vase (demo)")  # fmt: skip
    sealed = io.BytesIO()
    with resources.files("firmware_bridge.samples").joinpath("vase.gcode").open("rb") as sample:
        seal.seal(sample, sealed, designer, [box.sealing_public], terms)
    sealed.seek(0)
    job_id, path = Spool(data_dir.spool_dir(root)).add_sealed(sealed)
    store = Store(os.path.join(root, "box.sqlite"))
    try:
        number = store.add_job(job_id, "Sample vase (demo)", path, held=True)
        demo_sample.remember(store, number)
        return number, True
    finally:
        store.close()


def port_in_use(host: str, port: int):
    """Why the web app could not listen on `port`, or None when it is free."""
    try:
        socket.create_server((host, port), reuse_port=False).close()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def demo_fleet(root: str, stack: contextlib.ExitStack) -> dict:
    """The demo's fleet: a Mosquitto child on a loopback port and an operator key (made once) the box trusts.
    Returns the [fleet] settings, or {} when Mosquitto is not installed (the box then runs on its own)."""
    port = demo_broker.free_port()
    directory = os.path.join(root, "demo-broker")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    config = os.path.join(directory, "mosquitto.conf")
    with open(config, "w") as handle:
        handle.write(demo_broker.anonymous_config(port, os.path.join(directory, "mosquitto.log")))
    try:
        broker = demo_broker.LocalMosquitto(config, port).start()
    except demo_broker.BrokerUnavailable as exc:
        print("demo: %s; the box runs without a fleet broker" % exc, file=sys.stderr)
        return {}
    stack.callback(broker.stop)
    key_path = os.path.join(root, DEMO_OPERATOR_KEY)
    if not os.path.exists(key_path):
        write_secret_file(key_path, SignerKey.generate(keytext.OPERATOR).to_text().encode())
    operator = SignerKey.load(key_path)
    box = identity.load_or_create(root)
    print(
        "demo: fleet broker on 127.0.0.1:%d. In another terminal:\n"
        "  .venv/bin/mipai-fleet watch --broker-port %d\n"
        "  .venv/bin/mipai-fleet cmd %s queue.list --key %s --broker-port %d"
        % (port, port, box.box_id, key_path, port),
        file=sys.stderr,
    )
    return {"broker_host": "127.0.0.1", "broker_port": port, "idle_telemetry_seconds": 10,
            "operators": [operator.public_text]}  # fmt: skip


def run_demo(args) -> int:
    root = data_dir.prepare(args.data_dir)
    problem = port_in_use("127.0.0.1", args.http_port)
    if problem:  # checked before anything is queued: a demo that cannot start leaves nothing behind
        print("demo: port %d: %s. Pick another one: make run PORT=%d (or mipai-box demo --http-port %d)"
              % (args.http_port, problem, args.http_port + 1, args.http_port + 1), file=sys.stderr)  # fmt: skip
        return 2
    number, queued_now = queue_demo_job(root)
    with contextlib.ExitStack() as stack:
        # Imported here: the network's side (eth-account, py-evm) costs the box daemon 19 MB it never needs.
        from box.cli import demo_chain

        fleet = demo_chain.add_network(root, stack, demo_fleet(root, stack))
        settings = Settings.from_mapping({"box": {"http_host": "127.0.0.1"}, "fleet": fleet}, "demo")
        sample = ("sealed and queued as job %d" if queued_now else "is job %d (queued on the first run)") % number
        print(
            "demo: the sample vase %s. Open http://127.0.0.1:%d : the first visit creates the admin password; the "
            "sample starts when you first reach the dashboard. Ctrl-C stops the box (a print is cancelled "
            "safely)." % (sample, args.http_port),
            file=sys.stderr,
        )
        return _serve(root, settings, args.http_port, printer_options.DEMO_VIRTUAL_PRINTER)
