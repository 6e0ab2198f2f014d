"""The demo's network side (`mipai-box demo`, `make run`): the chain half runs in chain_client.demo_network; this
module hands it the demo box (its keys and a demo owner's address) and the sealed jobs in the box's spool, and
makes the box trust the network's rewards reports, so the sample print ends paid on chain and the dashboard
shows it. Without a fleet broker (Mosquitto missing) there is no network side and the box runs on its own."""

import glob
import os
import sys
from importlib import resources

from eth_account import Account

from box import data_dir
from provisioning import identity

DIRECTORY = "demo-network"


def _say(text: str) -> None:
    print("demo: %s" % text, file=sys.stderr, flush=True)


def add_network(root: str, stack, fleet: dict) -> dict:
    """Start the demo's network on the fleet broker of `fleet` (the [fleet] settings); return the settings with
    the network's verifier key added, or `fleet` unchanged when the network cannot run."""
    if not fleet:
        return fleet
    try:
        from chain_client import demo_network, job_registry
        from chain_client.verifier import BoxEntry
    except ImportError as exc:  # the box image installs no chain extra: its demo runs without the network
        _say("no network side (%s); the box runs without rewards" % exc)
        return fleet
    box = identity.load_or_create(root)
    owner = Account.create().address  # the chain is new each run, and so is the owner it pays
    jobs = []
    with resources.as_file(resources.files("firmware_bridge.samples").joinpath("vase.gcode")) as sample:
        lines, _estimate = job_registry.gcode_facts(str(sample))
    for path in sorted(glob.glob(os.path.join(data_dir.spool_dir(root), "*.mipjob"))):
        try:
            job_id, digest = job_registry.read_sealed(path)
        except job_registry.JobFileError:
            continue
        jobs.append(demo_network.job(job_id, digest, lines))
    entry = BoxEntry(box.box_id, box.signing_public, box.evm_address, owner.lower())
    network = demo_network.DemoNetwork(os.path.join(root, DIRECTORY), fleet["broker_port"], entry, jobs, log=_say)
    _say("starting the network side: an in-process chain, the contracts, a verifier (a few seconds)")
    try:
        network.start()
    except demo_network.DemoNetworkError as exc:
        _say("%s; the box runs without rewards" % exc)
        return fleet
    stack.callback(network.stop)
    _say("the sample print's reward goes to the owner address %s; the dashboard shows it once paid" % owner)
    return dict(fleet, verifiers=[network.verifier_public_text])
