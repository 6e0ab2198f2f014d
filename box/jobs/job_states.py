"""The states of a print job on the box and every legal move between them, in one table."""

from box.errors import WrongStateError

HELD = "held"  # uploaded without "print": kept, sealed, until the owner starts it
QUEUED = "queued"
VERIFYING = "verifying"
PRINTING = "printing"
PAUSED = "paused"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"
INTERRUPTED = "interrupted"

TRANSITIONS = {
    HELD: frozenset({QUEUED, CANCELLED}),
    QUEUED: frozenset({VERIFYING, CANCELLED}),
    VERIFYING: frozenset({PRINTING, FAILED, CANCELLED, INTERRUPTED}),
    PRINTING: frozenset({PAUSED, DONE, FAILED, CANCELLED, INTERRUPTED}),
    PAUSED: frozenset({PRINTING, FAILED, CANCELLED, INTERRUPTED}),
    DONE: frozenset(),
    FAILED: frozenset(),
    CANCELLED: frozenset(),
    INTERRUPTED: frozenset(),
}
FINISHED = frozenset(state for state, moves in TRANSITIONS.items() if not moves)
# States in which a crash or power cut leaves a job: it is never restarted silently.
UNFINISHED_AT_START = frozenset({VERIFYING, PRINTING, PAUSED})


class IllegalTransition(WrongStateError):
    """A job was asked to move where its state does not allow (a bug in the caller, or a stale request)."""


def check(current: str, wanted: str) -> None:
    if wanted not in TRANSITIONS.get(current, ()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, ()))) or "nothing: it has finished"
        raise IllegalTransition("a %s job cannot become %s (it can become %s)" % (current, wanted, allowed))
