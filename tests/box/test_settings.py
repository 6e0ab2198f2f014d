"""Settings: defaults, a TOML file over them, and every mistake in the file named at once."""

import dataclasses

import pytest

from box.settings import SCHEMA, SECTION_TYPES, Settings, SettingsError


def test_defaults_need_no_file():
    settings = Settings.load()
    assert settings.box.http_port == 8080
    assert settings.printer.port == "auto"
    assert settings.printer.scan == ("/dev/ttyUSB*", "/dev/ttyACM*")
    assert settings.setup.timeout_minutes == 30


def test_a_file_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "box.toml"
    path.write_text('[printer]\nport = "/dev/ttyACM0"\nbaud = 115200\nmaterial = "petg"\n')
    settings = Settings.load(path)
    assert (settings.printer.port, settings.printer.baud) == ("/dev/ttyACM0", 115200)
    assert settings.printer.material == "PETG"
    assert settings.box.http_port == 8080


def test_every_mistake_is_reported_with_what_to_change(tmp_path):
    path = tmp_path / "box.toml"
    path.write_text(
        '[printer]\nport = "COM3"\nbaud = "fast"\nspeed = 2\n[box]\nhttp_port = 70000\n[wifi]\nssid = "x"\n'
    )
    with pytest.raises(SettingsError) as refused:
        Settings.load(path)
    message = str(refused.value)
    for expected in (
        str(path),
        'printer.port must be "auto" or an absolute device path',
        "printer.baud must be 0 (probe the common rates) or a baud rate",
        "unknown setting printer.speed",
        "box.http_port must be a TCP port number",
        "unknown section [wifi]",
    ):
        assert expected in message


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"[printer\nport = 1", "is not valid TOML"),
        (b"\xff\xfe\x00", "is not valid TOML"),
        (b"printer = 5\n", "[printer] must be a table"),
        (b"[gpio]\nled_pin = true\n", "gpio.led_pin must be a BCM GPIO number"),
    ],
)
def test_malformed_files_are_refused(tmp_path, content, problem):
    path = tmp_path / "box.toml"
    path.write_bytes(content)
    with pytest.raises(SettingsError, match=r"box\.toml") as refused:
        Settings.load(path)
    assert problem in str(refused.value)


def test_a_missing_file_is_named():
    with pytest.raises(SettingsError, match=r"cannot read the settings file /nowhere/box\.toml"):
        Settings.load("/nowhere/box.toml")


def test_each_section_is_a_frozen_dataclass_with_exactly_the_schemas_keys():
    settings = Settings.defaults()
    for name, section_type in SECTION_TYPES.items():
        section = getattr(settings, name)
        assert isinstance(section, section_type)
        assert [field.name for field in dataclasses.fields(section_type)] == list(SCHEMA[name])
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.printer.port = "/dev/ttyUSB9"


def test_settings_changed_at_run_time_are_checked_like_the_file_and_keep_the_rest():
    base = Settings.from_mapping({"printer": {"port": "/dev/ttyUSB0"}, "fleet": {"keepalive_seconds": 60}}, "file")
    changed = base.with_changes("fleet", {"broker_host": "broker.example", "broker_port": 8883, "tls": True})
    assert (changed.fleet.broker_host, changed.fleet.broker_port, changed.fleet.tls) == ("broker.example", 8883, True)
    assert changed.fleet.keepalive_seconds == 60 and changed.printer.port == "/dev/ttyUSB0"  # the rest is kept
    assert base.fleet.broker_host == ""  # the original is not touched
    with pytest.raises(SettingsError) as refused:
        base.with_changes("fleet", {"broker_port": 0, "broker_host": "a b", "colour": "red"}, "the page")
    message = str(refused.value)
    assert message.startswith("the page: ") and "fleet.broker_port must be a TCP port number" in message
    assert "fleet.broker_host must be a host name" in message and "unknown setting fleet.colour" in message
    with pytest.raises(SettingsError, match="unknown section"):
        base.with_changes("chain", {"rpc": "x"})
