"""`mipai-box run`: the box daemon. One composition root: it builds the components, starts them in order and
stops them in reverse on SIGTERM or Ctrl-C. The printer's owner is a thread (blocking serial I/O); the event
loop waits for signals, and will serve the local web app."""

import asyncio
import logging
import os
import signal
import threading

from box import data_dir
from box.print_worker import PrintWorker
from box.store import Store
from provisioning import identity

log = logging.getLogger("mipai.box")
STOP_GRACE_SECONDS = 60.0


class Daemon:
    def __init__(self, root: str, settings) -> None:
        self.root = root
        self.settings = settings
        self.stop_requested = threading.Event()

    async def run(self) -> int:
        box = identity.load_or_create(self.root)
        store = Store(os.path.join(self.root, "box.sqlite"))
        try:
            for job in store.recover():
                log.warning("job %d (%s) was left unfinished: %s", job["id"], job["title"], job["reason"])
            queued = len(store.jobs(["queued"]))
        finally:
            store.close()
        data_dir.spool_dir(self.root)
        worker = PrintWorker(self.root, self.settings, self.stop_requested)
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, stopped.set)
        worker.start()
        log.info("box %s running; %d jobs queued; data in %s", box.box_id, queued, self.root)
        try:
            await stopped.wait()
        finally:
            log.info("stopping")
            self.stop_requested.set()
            await loop.run_in_executor(None, worker.join, STOP_GRACE_SECONDS)
        return 0
