"""License terms sealed inside a job, and the checks a box applies to them."""

import fnmatch
import re
import time

from secure_print.errors import HeaderError, LicenseError
from wire import canonical, keytext

VERSION = 1
MAX_BOXES = 32
MAX_PRINTS = 1_000_000
MAX_TITLE = 200
PRINTER_FIELDS = ("FIRMWARE_NAME", "MACHINE_TYPE", "UUID")
DEFAULT_MAX_HOTEND_C = 300
DEFAULT_MAX_BED_C = 120
DEFAULT_MAX_CHAMBER_C = 60
# SD-card writes, settings writes, firmware update, and line numbering (which the box's link owns).
DEFAULT_FORBIDDEN = ("M28", "M29", "M928", "M500", "M502", "M997", "M110")
_HEX32 = re.compile(r"[0-9a-f]{32}\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_BOX_ID = re.compile(r"[a-z2-7]{16}\Z")
_MCODE = re.compile(r"M[0-9]{1,4}\Z")
_MATERIAL = re.compile(r"[A-Z0-9][A-Z0-9+\-_.]{0,31}\Z")
FIELDS = [
    "boxes",
    "designer",
    "job_id",
    "license_id",
    "materials",
    "max_prints",
    "not_after",
    "not_before",
    "policy",
    "printers",
    "title",
    "version",
    "watermark_seed",
]


def normalise_mcode(text: str) -> str:
    """'m 104', 'M0104' -> 'M104'; raises ValueError for anything that is not an M-code."""
    compact = text.strip().upper().replace(" ", "")
    if not compact.startswith("M") or not compact[1:].isdigit():
        raise ValueError("%r is not an M-code such as M997" % text)
    return "M%d" % int(compact[1:])


class GcodePolicy:
    """Limits on what the G-code may ask of the printer."""

    def __init__(
        self,
        max_hotend_c=DEFAULT_MAX_HOTEND_C,
        max_bed_c=DEFAULT_MAX_BED_C,
        forbidden=DEFAULT_FORBIDDEN,
        max_chamber_c=DEFAULT_MAX_CHAMBER_C,
    ):
        self.max_hotend_c = max_hotend_c
        self.max_bed_c = max_bed_c
        self.max_chamber_c = max_chamber_c
        self.forbidden = tuple(sorted({normalise_mcode(code) for code in forbidden}, key=lambda c: int(c[1:])))

    def to_json(self) -> dict:
        return {
            "forbidden": list(self.forbidden),
            "max_bed_c": self.max_bed_c,
            "max_chamber_c": self.max_chamber_c,
            "max_hotend_c": self.max_hotend_c,
        }


class License:
    """The terms of one sealed job (see docs/sealed-job.md, "License")."""

    def __init__(
        self,
        license_id: str,
        job_id: str,
        designer: str,
        boxes: list,
        max_prints,
        not_before: int,
        not_after: int,
        watermark_seed: str,
        printers=(),
        materials=(),
        policy=None,
        title: str = "",
    ) -> None:
        self.license_id = license_id
        self.job_id = job_id
        self.designer = designer
        self.boxes = list(boxes)
        self.max_prints = max_prints
        self.not_before = not_before
        self.not_after = not_after
        self.watermark_seed = watermark_seed
        self.printers = [dict(entry) for entry in printers]
        self.materials = [material.upper() for material in materials]
        self.policy = policy or GcodePolicy()
        self.title = title

    def to_json(self) -> dict:
        return {
            "boxes": self.boxes,
            "designer": self.designer,
            "job_id": self.job_id,
            "license_id": self.license_id,
            "materials": self.materials,
            "max_prints": self.max_prints,
            "not_after": self.not_after,
            "not_before": self.not_before,
            "policy": self.policy.to_json(),
            "printers": self.printers,
            "title": self.title,
            "version": VERSION,
            "watermark_seed": self.watermark_seed,
        }

    def encode(self) -> bytes:
        data = canonical.encode(self.to_json())
        parse(data)  # a sealer must never write terms a box would refuse
        return data

    # -- checks on the box -------------------------------------------------------------------------------------

    def check_time(self, now: float) -> None:
        if now < self.not_before:
            raise LicenseError("the license is not valid yet (from %s)" % _utc(self.not_before))
        if now >= self.not_after:
            raise LicenseError("the license expired on %s" % _utc(self.not_after))

    def check_prints_left(self, prints_done: int) -> None:
        if self.max_prints is not None and prints_done >= self.max_prints:
            raise LicenseError(
                "no prints left: this box has made %d of the %d prints the license allows"
                % (prints_done, self.max_prints)
            )

    def check_material(self, material) -> None:
        if not self.materials:
            return
        if not material:
            raise LicenseError(
                "the license allows only %s; say which material is loaded (--material)" % ", ".join(self.materials)
            )
        if material.upper() not in self.materials:
            raise LicenseError(
                "the license allows %s, not the loaded %s" % (", ".join(self.materials), material.upper())
            )

    def check_printer(self, firmware: dict) -> None:
        """`firmware`: the printer's M115 fields. Passes when any `printers` entry matches all its fields."""
        if not self.printers:
            return
        for entry in self.printers:
            if all(fnmatch.fnmatchcase(firmware.get(field, ""), pattern) for field, pattern in entry.items()):
                return
        described = ", ".join("%s %r" % (field, firmware.get(field, "")) for field in PRINTER_FIELDS)
        raise LicenseError("this printer (%s) is not one the license allows" % described)


def _utc(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _fail(problem: str):
    raise HeaderError("the license inside the job is malformed: %s" % problem)


def _int(value, low: int, high: int, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        _fail("%s must be a whole number from %d to %d" % (name, low, high))
    return value


def _string_list(value, pattern, name: str, most: int) -> list:
    if not isinstance(value, list) or len(value) > most or not all(isinstance(v, str) for v in value):
        _fail("%s must be a list of at most %d strings" % (name, most))
    for item in value:
        if not pattern.match(item):
            _fail("%s holds %r" % (name, item[:40]))
    if len(set(value)) != len(value):
        _fail("%s repeats an entry" % name)
    return value


def parse(data: bytes) -> License:
    """Parse and validate decrypted license bytes; raises HeaderError for anything malformed."""
    try:
        value = canonical.decode(data)
    except canonical.CanonicalError as exc:
        raise HeaderError("the license inside the job is malformed: %s" % exc) from exc
    if not isinstance(value, dict):
        _fail("not an object")
    if sorted(value) != FIELDS:
        missing = sorted(set(FIELDS) - set(value))
        unknown = sorted(set(value) - set(FIELDS))
        _fail("missing %s, unknown %s" % (missing or "nothing", unknown or "nothing"))
    if value["version"] != VERSION:
        _fail("license version %r is not supported" % (value["version"],))
    for name, pattern in (("license_id", _HEX32), ("job_id", _HEX32), ("watermark_seed", _HEX64)):
        if not isinstance(value[name], str) or not pattern.match(value[name]):
            _fail("%s must be lower-case hex" % name)
    if not isinstance(value["designer"], str):
        _fail("designer must be key text")
    try:
        keytext.decode(value["designer"], keytext.DESIGNER)
    except ValueError as exc:
        _fail("designer: %s" % exc)
    boxes = _string_list(value["boxes"], _BOX_ID, "boxes", MAX_BOXES)
    if not boxes:
        _fail("boxes is empty")
    if value["max_prints"] is not None:
        _int(value["max_prints"], 1, MAX_PRINTS, "max_prints")
    not_before = _int(value["not_before"], 0, 2**40, "not_before")
    not_after = _int(value["not_after"], 0, 2**40, "not_after")
    if not_before >= not_after:
        _fail("not_before must come before not_after")
    printers = value["printers"]
    if not isinstance(printers, list) or len(printers) > 32:
        _fail("printers must be a list of at most 32 objects")
    for entry in printers:
        if not isinstance(entry, dict) or not entry or not set(entry) <= set(PRINTER_FIELDS):
            _fail("each printers entry maps some of %s to a pattern" % ", ".join(PRINTER_FIELDS))
        if not all(isinstance(p, str) and 0 < len(p) <= 128 for p in entry.values()):
            _fail("printer patterns are strings of 1 to 128 characters")
    materials = _string_list(value["materials"], _MATERIAL, "materials", 32)
    policy = value["policy"]
    if not isinstance(policy, dict) or sorted(policy) != ["forbidden", "max_bed_c", "max_chamber_c", "max_hotend_c"]:
        _fail("policy must hold exactly forbidden, max_bed_c, max_chamber_c and max_hotend_c")
    forbidden = _string_list(policy["forbidden"], _MCODE, "policy.forbidden", 256)
    if not isinstance(value["title"], str) or len(value["title"]) > MAX_TITLE:
        _fail("title must be a string of at most %d characters" % MAX_TITLE)
    return License(
        license_id=value["license_id"],
        job_id=value["job_id"],
        designer=value["designer"],
        boxes=boxes,
        max_prints=value["max_prints"],
        not_before=not_before,
        not_after=not_after,
        watermark_seed=value["watermark_seed"],
        printers=printers,
        materials=materials,
        policy=GcodePolicy(
            _int(policy["max_hotend_c"], 0, 500, "policy.max_hotend_c"),
            _int(policy["max_bed_c"], 0, 500, "policy.max_bed_c"),
            forbidden,
            _int(policy["max_chamber_c"], 0, 500, "policy.max_chamber_c"),
        ),
        title=value["title"],
    )
