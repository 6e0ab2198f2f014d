"""`mipai-box import GCODE`: seal the owner's own G-code to this box, so the box keeps only ciphertext."""

import os
import sys
import time

from box import data_dir
from console.progress_bar import ProgressBar
from provisioning import identity
from secure_print import keytext, seal
from secure_print.license import License
from secure_print.signer_key import SignerKey

PROGRAM = "mipai-box import"
HUNDRED_YEARS = 100 * 365 * 86400


def add_arguments(parser, _common) -> None:
    parser.add_argument("gcode", help="G-code file to seal for this box")
    parser.add_argument("--title", help="name shown for the job (default: the file name)")


def run(args) -> int:
    root = data_dir.prepare(args.data_dir)
    box = identity.load_or_create(root)
    owner = SignerKey(keytext.DESIGNER, box.signing, box.sealing)
    job_id, license_id, seed = seal.new_ids()
    now = int(time.time())
    terms = License(
        license_id=license_id,
        job_id=job_id,
        designer=owner.public_text,
        boxes=[box.box_id],
        max_prints=None,
        not_before=now - 86400,
        not_after=now + HUNDRED_YEARS,
        watermark_seed=seed,
        title=(args.title or os.path.basename(args.gcode))[:200],
    )
    target = os.path.join(data_dir.spool_dir(root), job_id + ".mipjob")
    try:
        size = os.stat(args.gcode).st_size
    except OSError as exc:
        print("%s: cannot read %s: %s" % (PROGRAM, args.gcode, exc.strerror or exc), file=sys.stderr)
        return 2
    bar = ProgressBar(size, "sealing", unit="bytes")
    try:
        with open(args.gcode, "rb") as source, open(target + ".partial", "wb") as out:
            seal.seal(source, out, owner, [box.sealing_public], terms, on_progress=bar.update)
            out.flush()
            os.fsync(out.fileno())
    except (OSError, ValueError) as exc:
        if os.path.exists(target + ".partial"):
            os.unlink(target + ".partial")
        print("%s: %s: %s" % (PROGRAM, args.gcode, getattr(exc, "strerror", None) or exc), file=sys.stderr)
        return 2
    finally:
        bar.close()
    os.replace(target + ".partial", target)
    print(target)
    return 0
