"""The one owner, in the daemon, of the jobs side's SQLite files: a thread holds the connections to `box.sqlite`
(the job queue, settings, events, accounts) and `prints.sqlite` (the print counters); coroutines and other
threads hand it calls. Every change of a job or a setting made through it is published on the change feed, and
so is a write by another process (`mipai-box queue add`), which SQLite's `data_version` reveals."""

import asyncio
import concurrent.futures
import logging
import os
import queue
import threading
import time

from box import change_feed, data_dir
from box.jobs.store import Store
from secure_print.ledger import PrintLedger

log = logging.getLogger("mipai.store")

# Store methods that change a job; the argument or result that names the job.
_JOB_WRITES = {"add_job": "result", "print_again": "result", "move": 0, "request": 0, "set_receipt": 0}
EXTERNAL_CHECK_SECONDS = 1.0  # how soon a write by another process is noticed


class StoreOwner:
    def __init__(self, root: str, feed: change_feed.ChangeFeed | None = None) -> None:
        self.feed = feed or change_feed.ChangeFeed()
        self._root = root
        self._calls = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="store", daemon=True)
        ready = concurrent.futures.Future()
        self._thread.start()
        self._calls.put((ready, lambda: None, ()))
        ready.result()  # the connections are open (or opening failed, which this raises)
        self.ledger = self._ledger  # touch it only in the owner thread: through `run` or `in_store`
        # For threads: `blocking_store.move(...)` runs Store.move in the owner thread and waits for it.
        self.blocking_store = _BlockingProxy(self, "call_blocking")
        self.blocking_ledger = _BlockingProxy(self, "ledger_blocking")

    # -- for coroutines ----------------------------------------------------------------------------------------

    async def call(self, method: str, *args, **kwargs):
        """Run `Store.<method>(*args, **kwargs)` in the owner thread."""
        return await asyncio.wrap_future(self._submit(self._store_call, method, args, kwargs))

    async def run(self, function, *args):
        """Run `function(store, *args)` in the owner thread (for work that needs several store calls)."""
        return await asyncio.wrap_future(self._submit(lambda: function(self._store, *args)))

    # -- for other threads (the printer's owner, the fleet agent, downloads) ---------------------------------

    def call_blocking(self, method: str, *args, **kwargs):
        return self._wait(self._submit(self._store_call, method, args, kwargs))

    def ledger_blocking(self, method: str, *args, **kwargs):
        return self._wait(self._submit(lambda: getattr(self._ledger, method)(*args, **kwargs)))

    def close(self) -> None:
        if self._thread.is_alive():
            self._calls.put(None)
            self._thread.join()

    # -- the owner thread ------------------------------------------------------------------------------------

    def _submit(self, function, *args) -> concurrent.futures.Future:
        future = concurrent.futures.Future()
        if threading.current_thread() is self._thread:  # a call from a change listener: run it now
            future.set_result(function(*args))
        else:
            self._calls.put((future, function, args))
        return future

    @staticmethod
    def _wait(future: concurrent.futures.Future):
        return future.result()

    def _store_call(self, method: str, args, kwargs):
        result = getattr(self._store, method)(*args, **kwargs)
        where = _JOB_WRITES.get(method)
        if where is not None:
            number = result if where == "result" else args[where]
            self.feed.publish(change_feed.JOB, self._store.job(number))
        elif method == "set_setting":
            self.feed.publish(change_feed.SETTING, {"key": args[0], "value": args[1]})
        elif method == "recover":
            for row in result:
                self.feed.publish(change_feed.JOB, row)
        return result

    def _serve(self) -> None:
        try:
            self._store = Store(os.path.join(self._root, "box.sqlite"))
            self._ledger = PrintLedger(data_dir.ledger_file(self._root))
        except BaseException as exc:  # hand the failure to the constructor waiting for `ready`
            future, _function, _args = self._calls.get()
            future.set_exception(exc)
            return
        seen_version = self._data_version()
        checked_at = time.monotonic()
        try:
            while True:
                try:
                    item = self._calls.get(timeout=EXTERNAL_CHECK_SECONDS)
                except queue.Empty:
                    item = ()
                if item is None:
                    return
                if item:
                    future, function, args = item
                    if future.set_running_or_notify_cancel():
                        try:
                            future.set_result(function(*args))
                        except BaseException as exc:  # the caller gets it, with its traceback
                            future.set_exception(exc)
                if time.monotonic() - checked_at >= EXTERNAL_CHECK_SECONDS:
                    checked_at = time.monotonic()
                    version = self._data_version()
                    if version != seen_version:
                        seen_version = version
                        self.feed.publish(change_feed.JOBS_CHANGED_ELSEWHERE)
        finally:
            self._ledger.close()
            self._store.close()

    def _data_version(self) -> int:
        """Changes only when another connection commits to box.sqlite (SQLite's PRAGMA data_version)."""
        return self._store.db.execute("PRAGMA data_version").fetchone()[0]


class _BlockingProxy:
    """`proxy.method(*args)` runs `method` in the owner thread and waits for it: for threads, not coroutines."""

    def __init__(self, owner: StoreOwner, how: str) -> None:
        self._call = getattr(owner, how)

    def __getattr__(self, method: str):
        return lambda *args, **kwargs: self._call(method, *args, **kwargs)
