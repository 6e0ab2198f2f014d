"""Changes that other components react to (a job moved, the printer came or went), pushed to whoever listens
instead of being polled. Publishers call `publish` from any thread; each listener drains its own bounded inbox
in its own thread, or has a callback run on its event loop."""

import collections
import threading

JOB = "job"  # data: the job's row as the store has it now
JOBS_CHANGED_ELSEWHERE = "jobs changed elsewhere"  # data: None (another process wrote box.sqlite)
SETTING = "setting"  # data: {"key", "value"}
PRINTER = "printer"  # data: {"printer": what M115 said (or None), "printing": bool}

INBOX_SIZE = 1000  # a listener that falls this far behind loses the oldest changes and is told so


class Change:
    __slots__ = ("kind", "data")

    def __init__(self, kind: str, data) -> None:
        self.kind = kind
        self.data = data

    def __repr__(self) -> str:
        return "Change(%s, %r)" % (self.kind, self.data)


class Listener:
    """One listener's inbox. `overflowed` is set when changes were dropped: re-read the whole state then."""

    def __init__(self, kinds, size: int = INBOX_SIZE) -> None:
        self.kinds = frozenset(kinds)
        self._inbox = collections.deque()
        self._size = size
        self._lock = threading.Lock()
        self.overflowed = False
        self.wake = threading.Event()

    def put(self, change: Change) -> None:
        with self._lock:
            if len(self._inbox) >= self._size:
                self._inbox.popleft()
                self.overflowed = True
            self._inbox.append(change)
        self.wake.set()

    def drain(self) -> list:
        """Every change since the last drain, oldest first."""
        with self._lock:
            changes = list(self._inbox)
            self._inbox.clear()
            self.wake.clear()
        return changes


class ChangeFeed:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners = []
        self._loop_callbacks = []

    def listen(self, *kinds: str) -> Listener:
        """A new inbox receiving changes of `kinds`, for a thread that drains it."""
        listener = Listener(kinds)
        with self._lock:
            self._listeners.append(listener)
        return listener

    def forget(self, listener: Listener) -> None:
        """Stop filling `listener` (its reader has stopped for good)."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def on_loop(self, loop, callback, *kinds: str) -> None:
        """Run `callback(change)` on `loop` (an asyncio event loop) for every change of `kinds`."""
        with self._lock:
            self._loop_callbacks.append((frozenset(kinds), loop, callback))

    def publish(self, kind: str, data=None) -> None:
        change = Change(kind, data)
        with self._lock:
            listeners = [listener for listener in self._listeners if kind in listener.kinds]
            callbacks = [(loop, callback) for kinds, loop, callback in self._loop_callbacks if kind in kinds]
        for listener in listeners:
            listener.put(change)
        for loop, callback in callbacks:
            if not loop.is_closed():
                loop.call_soon_threadsafe(callback, change)
