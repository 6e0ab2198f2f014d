"""`mipai-chain jobs add` reads a sealed job's public header (nothing decrypted), `boxes add` checks the box's
signed address binding, `status` lists verdicts; bad input is refused with a clear message and changes nothing."""

import json
import subprocess
import sys

from chain_client import job_registry
from chain_client.ledger import Ledger
from provisioning import identity
from secure_print.signer_key import SignerKey
from tests.secure_print.sealing import GCODE, Box, make_job
from wire import keytext


def run(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "chain_client.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=60)  # fmt: skip


def test_jobs_add_records_the_public_header_and_the_gcode_facts(tmp_path):
    designer = SignerKey.generate(keytext.DESIGNER)
    sealed = make_job(designer, Box())
    (tmp_path / "job.mipjob").write_bytes(sealed)
    (tmp_path / "job.gcode").write_bytes(GCODE)
    done = run("--ledger", "l.sqlite", "jobs", "add", "job.mipjob", cwd=tmp_path)
    assert done.returncode == 0 and "not known, so not checked: license id, line count, time estimate" in done.stdout
    done = run("--ledger", "l.sqlite", "jobs", "add", "job.mipjob", "--gcode", "job.gcode", "--license-id",
               "ab" * 16, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0 and "updated" in done.stdout, done.stderr
    job_id, digest = job_registry.read_sealed(str(tmp_path / "job.mipjob"))
    ledger = Ledger(str(tmp_path / "l.sqlite"))
    entry = ledger.job(job_id)
    ledger.close()
    assert entry.sealed_sha256 == digest and entry.license_id == "ab" * 16
    assert entry.lines == 3004 and entry.estimate_s > 0  # 4 header lines and 3000 moves

    (tmp_path / "cut.mipjob").write_bytes(sealed[:-1])
    refused = run("--ledger", "l.sqlite", "jobs", "add", "cut.mipjob", cwd=tmp_path)
    assert refused.returncode == 2 and "cut short" in refused.stderr
    (tmp_path / "junk.mipjob").write_bytes(b"hello")
    refused = run("--ledger", "l.sqlite", "jobs", "add", "junk.mipjob", cwd=tmp_path)
    assert refused.returncode == 2 and "not a sealed job" in refused.stderr


def test_boxes_add_checks_the_binding_and_status_lists_the_box(tmp_path):
    box = identity.load_or_create(str(tmp_path / "box"))
    other = identity.load_or_create(str(tmp_path / "other"))
    (tmp_path / "binding.json").write_text(json.dumps(box.address_binding(1_800_000_000)))
    (tmp_path / "other.json").write_text(json.dumps(other.address_binding(1_800_000_000)))
    owner = "0x" + "ab" * 20
    forged = run("boxes", "add", "--box-key", box.recipient, "--binding", "other.json", "--owner", owner, cwd=tmp_path)
    assert forged.returncode == 2 and "not signed by box %s" % box.box_id in forged.stderr
    wrong = run("boxes", "add", "--box-key", box.recipient, "--binding", "binding.json", "--evm-address",
                other.evm_address, "--owner", owner, cwd=tmp_path)  # fmt: skip
    assert wrong.returncode == 2 and "not %s" % other.evm_address in wrong.stderr
    bad_owner = run("boxes", "add", "--box-key", box.recipient, "--binding", "binding.json", "--owner", "me",
                    cwd=tmp_path)  # fmt: skip
    assert bad_owner.returncode == 2 and "not an EVM address" in bad_owner.stderr
    assert run("status", cwd=tmp_path).stdout.count("\n") == 1  # the header only: nothing was registered
    done = run("boxes", "add", "--box-key", box.recipient, "--binding", "binding.json", "--owner", owner, cwd=tmp_path)
    assert done.returncode == 0 and box.evm_address in done.stdout
    status = run("status", cwd=tmp_path)
    assert status.returncode == 0 and status.stdout.splitlines()[1].split()[:4] == [box.box_id, "0", "0", "0"]


def test_verify_explains_a_missing_key_and_an_unreachable_broker(tmp_path):
    from tests.mosquitto import free_port

    missing = run("verify", "--key", "none.key", cwd=tmp_path)
    assert missing.returncode == 2 and "no verifier key at none.key (make one: mipai-chain keygen" in missing.stderr
    assert run("keygen", "-o", "v.key", cwd=tmp_path).returncode == 0
    again = run("keygen", "-o", "v.key", cwd=tmp_path)
    assert again.returncode == 2 and "never overwritten" in again.stderr
    closed = run("verify", "--key", "v.key", "--broker-port", str(free_port()), cwd=tmp_path)
    assert closed.returncode == 2 and "cannot reach the broker 127.0.0.1:" in closed.stderr
