"""The box's settings: defaults, overridden by a TOML file, validated with messages that say what to change.

One settings object for the whole box, validated once; each component is handed the frozen section it needs
(`settings.printer`, `settings.fleet`, ...). Unknown keys are refused (a typo must not silently fall back to a
default), and every problem in a file is reported at once.
"""

import dataclasses
import tomllib

from box.errors import BadInputError
from wire import keytext
from wire.keytext import KeyTextError

_PORT_PATTERNS = ("/dev/ttyUSB*", "/dev/ttyACM*")


def _port_number(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise ValueError("must be a TCP port number from 1 to 65535")
    return value


def _baud(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not (value == 0 or 1200 <= value <= 4_000_000):
        raise ValueError("must be 0 (probe the common rates) or a baud rate such as 115200")
    return value


def _text(limit: int):
    def check(value) -> str:
        if not isinstance(value, str) or len(value) > limit or any(ord(c) < 32 for c in value):
            raise ValueError("must be text of at most %d characters, without control characters" % limit)
        return value

    return check


def _serial_port(value) -> str:
    if not isinstance(value, str) or not (value == "auto" or value.startswith("/")):
        raise ValueError('must be "auto" or an absolute device path such as "/dev/ttyUSB0"')
    return value


def _patterns(value) -> tuple:
    if not isinstance(value, list) or not value or not all(isinstance(p, str) and p.startswith("/") for p in value):
        raise ValueError('must be a list of absolute device patterns such as ["/dev/ttyUSB*"]')
    return tuple(value)


def _minutes(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 24 * 60:
        raise ValueError("must be a whole number of minutes from 1 to 1440")
    return value


def _seconds(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 10 <= value <= 86400:
        raise ValueError("must be a whole number of seconds from 10 to 86400")
    return value


def _megabytes(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 4096:
        raise ValueError("must be a whole number of megabytes from 1 to 4096")
    return value


def _flag(value) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def _pin(value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 27:
        raise ValueError("must be a BCM GPIO number from 0 to 27")
    return value


def _material(value) -> str:
    if not isinstance(value, str) or len(value) > 32 or (value and not value.replace("-", "").isalnum()):
        raise ValueError('must be a material name such as "PLA", or "" when unknown')
    return value.upper()


def _host(value) -> str:
    if not isinstance(value, str) or len(value) > 253 or any(c.isspace() or ord(c) < 32 for c in value):
        raise ValueError('must be a host name or address, or "" to run without a fleet')
    return value


def _file(value) -> str:
    if not isinstance(value, str) or (value and not value.startswith("/")) or len(value) > 400:
        raise ValueError('must be an absolute file path, or "" when not used')
    return value


def _operator_keys(value) -> tuple:
    if not isinstance(value, list | tuple) or not all(isinstance(text, str) for text in value):
        raise ValueError('must be a list of operator keys such as ["mipai-operator:..."]')
    for text in value:
        try:
            keytext.decode(text, keytext.OPERATOR)
        except KeyTextError as exc:
            raise ValueError("has a key that is not an operator key: %s" % exc) from None
    return tuple(value)


def _verifier_keys(value) -> tuple:
    if not isinstance(value, list | tuple) or not all(isinstance(text, str) for text in value):
        raise ValueError('must be a list of verifier keys such as ["mipai-network:..."]')
    for text in value:
        try:
            keytext.decode(text, keytext.NETWORK)
        except KeyTextError as exc:
            raise ValueError("has a key that is not a verifier key: %s" % exc) from None
    return tuple(value)


def _whole(low: int, high: int):
    def check(value) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise ValueError("must be a whole number from %d to %d" % (low, high))
        return value

    return check


# section -> key -> (default, validator)
SCHEMA = {
    "box": {
        "name": ("", _text(40)),
        "http_host": ("0.0.0.0", _text(64)),
        "http_port": (8080, _port_number),
        "max_upload_mb": (512, _megabytes),
    },
    "printer": {
        "port": ("auto", _serial_port),
        "baud": (0, _baud),
        "scan": (list(_PORT_PATTERNS), _patterns),
        "material": ("", _material),
    },
    "setup": {"timeout_minutes": (30, _minutes), "first_boot_file": ("/boot/firmware/mipai.toml", _text(200))},
    "network": {
        "manage_wifi": (False, _flag),
        "interface": ("wlan0", _text(15)),
        "hotspot_after_seconds": (120, _seconds),
    },
    "gpio": {"led_pin": (17, _pin), "button_pin": (27, _pin)},
    "fleet": {
        "broker_host": ("", _host),
        "broker_port": (1883, _port_number),
        "tls": (False, _flag),
        "ca_file": ("", _file),
        "cert_file": ("", _file),
        "key_file": ("", _file),
        "keepalive_seconds": (30, _whole(5, 3600)),
        "idle_telemetry_seconds": (30, _whole(1, 3600)),
        "max_outbox_records": (100_000, _whole(100, 10_000_000)),
        "operators": ([], _operator_keys),
        "verifiers": ([], _verifier_keys),  # the network's verifiers whose rewards reports the box shows
    },
}


class SettingsError(BadInputError):
    """One or more settings are wrong; the message lists every problem."""


@dataclasses.dataclass(frozen=True)
class BoxSettings:
    name: str
    http_host: str
    http_port: int
    max_upload_mb: int


@dataclasses.dataclass(frozen=True)
class PrinterSettings:
    port: str  # "auto": the first printer found on `scan`
    baud: int  # 0: probe the common rates
    scan: tuple
    material: str


@dataclasses.dataclass(frozen=True)
class SetupSettings:
    timeout_minutes: int
    first_boot_file: str


@dataclasses.dataclass(frozen=True)
class NetworkSettings:
    manage_wifi: bool
    interface: str
    hotspot_after_seconds: int


@dataclasses.dataclass(frozen=True)
class GpioSettings:
    led_pin: int
    button_pin: int


@dataclasses.dataclass(frozen=True)
class FleetSettings:
    broker_host: str  # "": no fleet
    broker_port: int
    tls: bool
    ca_file: str
    cert_file: str
    key_file: str
    keepalive_seconds: int
    idle_telemetry_seconds: int
    max_outbox_records: int
    operators: tuple
    verifiers: tuple


SECTION_TYPES = {
    "box": BoxSettings,
    "printer": PrinterSettings,
    "setup": SetupSettings,
    "network": NetworkSettings,
    "gpio": GpioSettings,
    "fleet": FleetSettings,
}


class Settings:
    """Validated settings, a frozen dataclass per section: `settings.printer.port`."""

    def __init__(self, values: dict) -> None:
        self._values = values
        self.box = BoxSettings(**values["box"])
        self.printer = PrinterSettings(**values["printer"])
        self.setup = SetupSettings(**values["setup"])
        self.network = NetworkSettings(**values["network"])
        self.gpio = GpioSettings(**values["gpio"])
        self.fleet = FleetSettings(**values["fleet"])

    def as_dict(self) -> dict:
        return {section: dict(keys) for section, keys in self._values.items()}

    def with_changes(self, section: str, changes: dict, origin: str = "the dashboard") -> "Settings":
        """A new Settings with `changes` to one section (chosen at run time), each checked as in a file; the
        rest is kept as it was validated. Raises SettingsError naming every refused value."""
        keys = SCHEMA.get(section)
        if keys is None:
            raise SettingsError("%s: unknown section [%s]" % (origin, section))
        problems, checked = [], {}
        for key, raw in changes.items():
            if key not in keys:
                problems.append("unknown setting %s.%s" % (section, key))
                continue
            try:
                checked[key] = keys[key][1](raw)
            except ValueError as exc:
                problems.append("%s.%s %s (got %r)" % (section, key, exc, raw))
        if problems:
            raise SettingsError("%s: %s" % (origin, "; ".join(problems)))
        values = self.as_dict()
        values[section].update(checked)
        return Settings(values)

    @classmethod
    def defaults(cls) -> "Settings":
        return cls.from_mapping({}, "defaults")

    @classmethod
    def from_mapping(cls, data: dict, origin: str) -> "Settings":
        problems = []
        values = {}
        if not isinstance(data, dict):
            raise SettingsError("%s: settings must be a table of sections" % origin)
        for section in data:
            if section not in SCHEMA:
                problems.append("unknown section [%s] (known: %s)" % (section, ", ".join(SCHEMA)))
            elif not isinstance(data[section], dict):
                problems.append("[%s] must be a table" % section)
        for section, keys in SCHEMA.items():
            given = data.get(section, {})
            given = given if isinstance(given, dict) else {}
            values[section] = {}
            for key in given:
                if key not in keys:
                    problems.append("unknown setting %s.%s (known: %s)" % (section, key, ", ".join(keys)))
            for key, (default, check) in keys.items():
                raw = given.get(key, default)
                try:
                    values[section][key] = check(raw)
                except ValueError as exc:
                    problems.append("%s.%s %s (got %r)" % (section, key, exc, raw))
        if problems:
            raise SettingsError("%s: %s" % (origin, "; ".join(problems)))
        return cls(values)

    @classmethod
    def load(cls, path=None) -> "Settings":
        """Defaults, overridden by the TOML file at `path` when given."""
        if path is None:
            return cls.defaults()
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except OSError as exc:
            raise SettingsError("cannot read the settings file %s: %s" % (path, exc.strerror or exc)) from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError("%s is not valid TOML: %s" % (path, exc)) from exc
        except UnicodeDecodeError as exc:
            raise SettingsError("%s is not valid TOML: it is not UTF-8 text" % path) from exc
        return cls.from_mapping(data, str(path))
