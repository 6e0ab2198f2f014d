"""The store's owner for the event loop: one thread holds the SQLite connection; coroutines hand it calls."""

import asyncio
import concurrent.futures
import os

from box.jobs.store import Store


class StoreOwner:
    def __init__(self, root: str) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._store = self._executor.submit(Store, os.path.join(root, "box.sqlite")).result()

    async def call(self, method: str, *args, **kwargs):
        """Run `Store.<method>(*args, **kwargs)` in the owner thread."""
        function = getattr(self._store, method)
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: function(*args, **kwargs))

    async def run(self, function, *args):
        """Run `function(store, *args)` in the owner thread (for work that needs several store calls)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, self._store, *args)

    def close(self) -> None:
        self._executor.submit(self._store.close).result()
        self._executor.shutdown()
