"""`mipai-box queue add|list|start|pause|resume|cancel`: the daemon's job queue, from the command line."""

import os
import sys
import time

from box import data_dir
from box.jobs import job_states
from box.jobs.spool import Spool, SpoolError, title_from
from box.jobs.store import Store, UnknownJob

PROGRAM = "mipai-box queue"


def add_arguments(parser, common) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", parents=[common], help="copy a sealed job into the spool and queue it")
    add.add_argument("job", help="sealed job file (.mipjob)")
    actions.add_parser("list", parents=[common], help="list jobs with their state and progress")
    for action in ("start", "pause", "resume", "cancel"):
        summary = "start a held job (a slicer's plain upload)" if action == "start" else "%s a job" % action
        command = actions.add_parser(action, parents=[common], help=summary)
        command.add_argument("number", type=int, help="the job's number from `queue list`")


def run(args) -> int:
    root = data_dir.prepare(args.data_dir)
    store = Store(os.path.join(root, "box.sqlite"))
    try:
        if args.action == "add":
            try:
                with open(args.job, "rb") as source:
                    job_id, path = Spool(data_dir.spool_dir(root)).add_sealed(source)
            except (OSError, SpoolError) as exc:
                print("%s: %s: %s" % (PROGRAM, args.job, getattr(exc, "strerror", None) or exc), file=sys.stderr)
                return 2
            number = store.add_job(job_id, title_from(args.job), path)
            print("queued job %d (%s)" % (number, job_id))
        elif args.action == "list":
            for row in store.jobs():
                progress = ""
                if row["source_lines"]:
                    progress = " %5.1f%%" % (100.0 * row["last_source_line"] / row["source_lines"])
                print(
                    "%4d  %-11s%s  %s  %s%s"
                    % (
                        row["id"],
                        row["state"],
                        progress,
                        time.strftime("%Y-%m-%d %H:%M", time.localtime(row["updated_at"])),
                        row["title"],
                        "  (%s)" % row["reason"] if row["reason"] else "",
                    )
                )
        else:
            try:
                print(store.request(args.number, args.action))
            except (UnknownJob, job_states.IllegalTransition) as exc:
                print("%s: %s" % (PROGRAM, exc), file=sys.stderr)
                return 2
    finally:
        store.close()
    return 0
