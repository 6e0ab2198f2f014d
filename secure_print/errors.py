"""Why a sealed job was refused. Each class names the part of the job at fault; messages never echo secrets."""


class SealedJobError(Exception):
    """A sealed job cannot be opened or printed on this box."""


class HeaderError(SealedJobError):
    """The file is not a well-formed sealed job (junk, unknown version or suite, impossible lengths)."""


class UntrustedKeyError(SealedJobError):
    """The designer key is neither pinned nor certified by a pinned network key, or it is revoked."""


class SignatureError(SealedJobError):
    """The designer's signature or the network's certificate signature does not verify."""


class NotForThisBoxError(SealedJobError):
    """The job was sealed for other boxes."""


class PayloadError(SealedJobError):
    """The encrypted G-code is truncated, extended, reordered or altered."""


class DecompressionError(SealedJobError):
    """The G-code does not decompress to the stated length, or would exceed the box's limits."""


class LicenseError(SealedJobError):
    """The license does not allow this print now: validity, prints left, printer or material."""


class PolicyError(SealedJobError):
    """A line of the G-code breaks the job's G-code policy or cannot be sent to a printer."""
