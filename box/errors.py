"""The box's own errors, by who is to blame. Each carries a message for a person; the libraries keep theirs
(`SealedJobError`, `FirmwareBridgeError`, ...), which the box reports as they are."""


class BoxError(Exception):
    """Every error of the box itself."""


class BadInputError(BoxError, ValueError):
    """What the owner or an operator gave is wrong (a settings file, an upload, a command's arguments, a job
    number): nothing changed; the message says what to change."""


class WrongStateError(BoxError, ValueError):
    """The request is fine but does not fit now (a job that is already finished cannot be paused)."""


class MissingPartError(BoxError, RuntimeError):
    """Something the box needs on this machine is not there (a program, a device); the message names it."""
