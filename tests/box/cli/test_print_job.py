"""A sealed job from designer to printer as users run it: mipai-seal, mipai-box, a virtual printer on a pty."""

import hashlib
import json
import os
import sqlite3

import pytest

from firmware_bridge import gcode
from tests.users import SAMPLE, run
from wire import envelope


def _read(path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _commands(path: str) -> list:
    with open(path, "rb") as handle:
        return [command for _, command in gcode.iter_commands(handle)]


def test_a_sealed_print_runs_end_to_end_and_leaves_no_plaintext(world):
    job = world.seal("--max-prints", "2", "--material", "PLA,PETG", "--printer", "MIP.AI Virtual*")
    job_hash = hashlib.sha256(_read(job)).hexdigest()
    refused, record = world.print_job(job, "--material", "PLA")
    assert refused.returncode == 2 and "not trusted on this box" in refused.stderr and record == []
    assert world.box("trust", "add", world.designer_public, "--name", "Ada").returncode == 0

    result, record = world.print_job(job, "--material", "PLA")
    assert result.returncode == 0, result.stderr
    assert "recorded print 1 of license" in result.stderr
    assert "done: all lines confirmed by the printer. 6030 lines confirmed" in result.stderr
    assert world.prints_done() == 1
    with sqlite3.connect(str(world.data_dir / "prints.sqlite")) as db:
        (stored,) = db.execute("SELECT usage_record FROM prints").fetchone()
    signing_public = bytes.fromhex(world.box("keys", "show").stdout.split("ed25519 public:")[1].split()[0])
    usage = envelope.verify(json.loads(stored), signing_public)
    assert (usage["box_id"], usage["print_number"], usage["material"]) == (world.box_id, 1, "PLA")
    assert usage["printer"]["MACHINE_TYPE"] == "MIP.AI Virtual Printer"
    forged = json.loads(stored)
    forged["body"]["print_number"] = 7
    with pytest.raises(envelope.EnvelopeError):
        envelope.verify(forged, signing_public)

    # The printer received every command; the watermark moved X by 1 µm on a few moves and changed nothing else.
    original = _commands(SAMPLE)
    assert len(record) == len(original)
    changed = [(a, b) for a, b in zip(original, record, strict=True) if a != b]
    assert 0 < len(changed) < len(original) // 16
    for before, after in changed:
        assert before.split()[1:] == after.split()[1:] or before.split()[2:] == after.split()[2:]
        assert abs(float(before.split()[1][1:]) - float(after.split()[1][1:])) == pytest.approx(0.001)

    # Decrypted G-code existed only in memory: no file the box wrote, and nothing it printed, holds a line of it.
    lines = {line.encode() for line in original if len(line) >= 8}
    written = []
    for directory in (world.data_dir, world.box_tmp, world.box_cwd):
        for folder, _, files in os.walk(directory):
            written += [os.path.join(folder, name) for name in files]
    assert any(path.endswith("prints.sqlite") for path in written)
    for path in written:
        content = _read(path)
        found = [line for line in lines if line in content]
        assert not found, "%s holds G-code, e.g. %r" % (path, found[0])
    output = (result.stdout + result.stderr).encode()
    assert not [line for line in lines if line in output]
    assert hashlib.sha256(_read(job)).hexdigest() == job_hash

    # The designer traces the printer's record back to this box and print.
    record_path = sorted(world.printer_dir.iterdir())[-1]
    traced = run("mipai-seal", "trace", str(record_path), "--job", job, "--key", world.key)
    assert traced.returncode == 0, traced.stderr
    assert "box %s, print 1:" % world.box_id in traced.stdout


def test_refused_jobs_send_nothing_and_count_nothing(world):
    assert world.box("trust", "add", world.designer_public).returncode == 0
    job = world.seal("--max-prints", "1", "--material", "PLA", "--printer", "Prusa MK4*", name="limited.mipjob")
    result, record = world.print_job(job, "--material", "ABS")
    assert result.returncode == 2 and "not the loaded ABS" in result.stderr
    assert "Nothing was sent to the printer" in result.stderr and record == []
    result, record = world.print_job(job, "--material", "PLA")
    assert result.returncode == 2 and "is not one the license allows" in result.stderr and record == []
    assert world.prints_done() == 0

    once = world.seal("--max-prints", "1", name="once.mipjob")
    assert world.print_job(once)[0].returncode == 0
    result, record = world.print_job(once)
    assert result.returncode == 2 and "made 1 of the 1 prints" in result.stderr and record == []
    assert world.prints_done() == 1

    hot = world.designer_dir / "hot.gcode"
    hot.write_bytes(b"G28\nM104 S350\nG1 X10\n")
    result, record = world.print_job(world.seal("--max-prints", "1", "--force", source=str(hot), name="hot.mipjob"))
    assert result.returncode == 2 and "line 2: M104 asks for 350" in result.stderr and record == []
    assert world.prints_done() == 1


def test_each_print_carries_its_own_number_and_survives_stripping(world):
    assert world.box("trust", "add", world.designer_public).returncode == 0
    job = world.seal("--max-prints", "5")
    for _ in range(2):
        assert world.print_job(job)[0].returncode == 0
    records = sorted(world.printer_dir.iterdir())
    second = records[-1].read_text().splitlines()
    # A leaker strips spaces, adds comments and frames lines with their own numbers and checksums.
    mangled = world.printer_dir / "mangled.gcode"
    mangled.write_text(
        "".join(
            "%s ; leaked\n" % command.replace(" ", "") if index % 2 else gcode.frame(index, command).decode()
            for index, command in enumerate(second)
        )
    )
    traced = run("mipai-seal", "trace", str(mangled), "--job", job, "--key", world.key)
    assert traced.returncode == 0, traced.stderr
    assert "box %s, print 2:" % world.box_id in traced.stdout
    unmarked = run("mipai-seal", "trace", SAMPLE, "--job", job, "--key", world.key)
    assert unmarked.returncode == 1
    assert "no print of this job matches" in unmarked.stdout


def test_import_seals_the_owners_gcode_to_the_box(world):
    imported = world.box("import", SAMPLE)
    assert imported.returncode == 0, imported.stderr
    spooled = imported.stdout.strip()
    assert spooled.startswith(str(world.data_dir / "spool")) and spooled.endswith(".mipjob")
    content = _read(spooled)
    assert b"G1 X" not in content and content.startswith(b"MIPJOB")
    result, record = world.print_job(spooled)
    assert result.returncode == 0, result.stderr
    assert len(record) == 6030


def test_keys_are_private_and_stable(world):
    keys = world.data_dir / "keys"
    assert oct(keys.stat().st_mode & 0o777) == "0o700"
    for name in os.listdir(keys):
        assert oct((keys / name).stat().st_mode & 0o777) == "0o600"
    again = world.box("keys", "show")
    assert world.box_id in again.stdout and world.recipient in again.stdout
    assert "setup hotspot:   MIPAI-%s, password " % world.box_id[:4].upper() in again.stdout


def test_a_network_certified_designer_prints_on_a_box_that_pins_the_network(world):
    network_key = str(world.designer_dir / "network.key")
    made = run("mipai-seal", "keygen", "--network", "-o", network_key)
    assert made.returncode == 0, made.stderr
    network_public = made.stdout.strip()
    assert network_public.startswith("mipai-network:")
    cert = str(world.designer_dir / "ada.cert")
    certified = run(
        "mipai-seal", "certify", world.designer_public, "--name", "Ada", "--expires", "2099-01-01",
        "--key", network_key, "-o", cert,
    )  # fmt: skip
    assert certified.returncode == 0, certified.stderr
    job = world.seal("--max-prints", "1", "--cert", cert)
    assert world.box("trust", "add", network_public).returncode == 0
    result, record = world.print_job(job)
    assert result.returncode == 0, result.stderr
    assert "designer certified as 'Ada'" in result.stderr and len(record) == 6030

    public = run("mipai-seal", "inspect", job)
    assert "certified by:      %s as 'Ada'" % network_public in public.stdout
    assert "license terms are encrypted" in public.stdout and "max_prints" not in public.stdout
    terms = run("mipai-seal", "inspect", job, "--box-key", str(world.data_dir / "keys" / "box_x25519.key"))
    assert "boxes:             ['%s']" % world.box_id in terms.stdout and "max_prints:        1" in terms.stdout

    assert world.box("trust", "revoke", world.designer_public).returncode == 0
    again = world.seal("--max-prints", "1", "--cert", cert, name="again.mipjob")
    result, record = world.print_job(again)
    assert result.returncode == 2 and "is revoked on this box" in result.stderr and record == []


def test_bad_input_to_the_command_lines_is_explained(world, tmp_path):
    junk = tmp_path / "junk.mipjob"
    junk.write_bytes(b"G28\nG1 X1\n")
    result, record = world.print_job(str(junk))
    assert result.returncode == 2 and "not a sealed job" in result.stderr and record == []
    missing = world.box("print", str(tmp_path / "nowhere.mipjob"), "--virtual-printer")
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    bad_key = world.box("trust", "add", "mipai-designer:nonsense")
    assert bad_key.returncode == 2 and "mistyped or cut short" in bad_key.stderr
    no_box = run("mipai-seal", "seal", SAMPLE, "--to", "mipai-box:AAAA", "--key", world.key, "--max-prints", "1",
                 "--expires", "2099-01-01", "-o", str(tmp_path / "x.mipjob"))  # fmt: skip
    assert no_box.returncode == 2 and "--to:" in no_box.stderr
    bad_date = run("mipai-seal", "seal", SAMPLE, "--to", world.recipient, "--key", world.key, "--max-prints", "1",
                   "--expires", "next week", "-o", str(tmp_path / "x.mipjob"))  # fmt: skip
    assert bad_date.returncode == 2 and "is not a date" in bad_date.stderr
    assert not (tmp_path / "x.mipjob").exists() and not (tmp_path / "x.mipjob.partial").exists()


def test_sealing_refuses_gcode_the_boxes_would_refuse_unless_forced(world):
    hot = world.designer_dir / "hot.gcode"
    hot.write_bytes(b"G28\nM104 S200 B400 F1\nG1 X10\n")
    output = world.designer_dir / "hot.mipjob"
    args = ("seal", str(hot), "--to", world.recipient, "--key", world.key, "--max-prints", "1", "--expires",
            "2099-12-31", "-o", str(output))  # fmt: skip
    refused = run("mipai-seal", *args)
    assert refused.returncode == 2 and "line 2: M104 asks for 400 °C on the hotend (its B" in refused.stderr
    assert "--force" in refused.stderr and not output.exists()
    assert list(world.designer_dir.glob("hot.mipjob*")) == []
    forced = run("mipai-seal", *args, "--force")
    assert forced.returncode == 0 and "warning" in forced.stderr and output.exists()
    chamber = run("mipai-seal", "seal", str(hot), "--to", world.recipient, "--key", world.key, "-o",
                  str(world.designer_dir / "c.mipjob"), "--max-prints", "1", "--expires", "2099-12-31",
                  "--max-hotend", "400", "--max-chamber", "501")  # fmt: skip
    assert chamber.returncode == 2 and "--max-chamber must be between 0 and 500" in chamber.stderr
