"""Uploads streamed from a request into the spool, through a bounded pipe to a worker thread: a sealed job is
stored as it is; G-code is sealed to the box as it arrives and never touches storage in plaintext."""

import asyncio
import queue

from aiohttp import web

from box.jobs.spool import title_from
from box.web.appkeys import BOX, SPOOL


class _Pipe:
    """Bytes handed from the event loop to a worker thread, bounded; the plaintext stays in memory."""

    def __init__(self) -> None:
        self._queue = queue.Queue(maxsize=8)
        self._pending = b""
        self.failed = False

    def put(self, data: bytes) -> None:
        while not self.failed:
            try:
                self._queue.put(data, timeout=0.2)
                return
            except queue.Full:
                continue

    def read(self, size: int = -1) -> bytes:
        while not self._pending:
            data = self._queue.get()
            if data is None:
                self._queue.put(None)
                return b""
            self._pending = data
        if size < 0:
            size = len(self._pending)
        data, self._pending = self._pending[:size], self._pending[size:]
        return data


async def store_upload(app: web.Application, part) -> tuple:
    """Stream one multipart file part into the spool: a sealed job as it is, G-code sealed to the box in memory.
    Returns (job id, path, title); raises SpoolError."""
    title = title_from(part.filename or "upload")
    first = await part.read_chunk(65536)
    pipe = _Pipe()
    spool, box = app[SPOOL], app[BOX]

    def ingest():
        try:
            if first.startswith(b"MIPJOB"):
                return spool.add_sealed(pipe)
            return spool.add_own_gcode(pipe, title, box)
        finally:
            pipe.failed = True

    loop = asyncio.get_running_loop()
    stored = loop.run_in_executor(None, ingest)
    data = first
    while data and not pipe.failed:
        await loop.run_in_executor(None, pipe.put, data)
        data = await part.read_chunk(65536)
    await loop.run_in_executor(None, pipe.put, None)
    job_id, path = await stored
    return job_id, path, title
