"""`mipai-box import GCODE`: seal the owner's own G-code to this box, so the box keeps only ciphertext."""

import os
import sys

from box import data_dir
from box.jobs.spool import Spool, SpoolError
from console.progress_bar import ProgressBar
from provisioning import identity

PROGRAM = "mipai-box import"


def add_arguments(parser, _common) -> None:
    parser.add_argument("gcode", help="G-code file to seal for this box")
    parser.add_argument("--title", help="name shown for the job (default: the file name)")


def run(args) -> int:
    root = data_dir.prepare(args.data_dir)
    box = identity.load_or_create(root)
    spool = Spool(data_dir.spool_dir(root))
    try:
        size = os.stat(args.gcode).st_size
    except OSError as exc:
        print("%s: cannot read %s: %s" % (PROGRAM, args.gcode, exc.strerror or exc), file=sys.stderr)
        return 2
    bar = ProgressBar(size, "sealing", unit="bytes")
    try:
        with open(args.gcode, "rb") as source:
            _job_id, path = spool.add_own_gcode(source, args.title or args.gcode, box, on_progress=bar.update)
    except (OSError, SpoolError) as exc:
        print("%s: %s: %s" % (PROGRAM, args.gcode, getattr(exc, "strerror", None) or exc), file=sys.stderr)
        return 2
    finally:
        bar.close()
    print(path)
    return 0
