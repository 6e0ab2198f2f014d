"""The first-boot file on the boot partition (`mipai.toml`): Wi-Fi, fleet enrolment token and time zone,
applied once; then its secrets are removed from the file so the SD card no longer carries them.

    [wifi]
    ssid = "Workshop"
    password = "..."
    [fleet]
    enrolment_token = "..."
    [time]
    timezone = "Europe/Berlin"
"""

import os
import re
import time
import tomllib

KNOWN = {"wifi": {"ssid", "password"}, "fleet": {"enrolment_token"}, "time": {"timezone"}}
_TIMEZONE = re.compile(r"[A-Za-z_]+(/[A-Za-z0-9_+\-]+){0,2}\Z")


class FirstBootError(ValueError):
    """The first-boot file is malformed; nothing of it was applied."""


def read(path: str) -> dict:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise FirstBootError("%s is not valid TOML: %s" % (path, exc)) from exc
    problems = []
    for section, values in data.items():
        if section == "applied":
            continue
        if section not in KNOWN or not isinstance(values, dict):
            problems.append("unknown section [%s]" % section)
            continue
        for key, value in values.items():
            if key not in KNOWN[section]:
                problems.append("unknown setting %s.%s" % (section, key))
            elif not isinstance(value, str):
                problems.append("%s.%s must be text" % (section, key))
    wifi = data.get("wifi", {})
    if isinstance(wifi, dict) and wifi.get("password") and not wifi.get("ssid"):
        problems.append("wifi.password is given without wifi.ssid")
    zone = data.get("time", {}).get("timezone") if isinstance(data.get("time"), dict) else None
    if isinstance(zone, str) and not _TIMEZONE.match(zone):
        problems.append("time.timezone %r is not a zone name such as Europe/Berlin" % zone)
    if problems:
        raise FirstBootError("%s: %s" % (path, "; ".join(problems)))
    return data


def apply(path: str, data_dir: str, network, set_timezone, now=time.time) -> list:
    """Apply the file once; return what was done. Secrets leave the file after they were applied."""
    if not os.path.exists(path):
        return []
    data = read(path)
    if data.get("applied"):
        return []
    done = []
    wifi = data.get("wifi", {})
    if wifi.get("ssid"):
        network.connect(wifi["ssid"], wifi.get("password", ""))
        done.append("joined Wi-Fi %r" % wifi["ssid"])
    token = data.get("fleet", {}).get("enrolment_token")
    if token:
        target = os.path.join(data_dir, "enrolment_token")
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(token)
        done.append("kept the fleet enrolment token")
    zone = data.get("time", {}).get("timezone")
    if zone:
        set_timezone(zone)
        done.append("set the time zone to %s" % zone)
    _strip_secrets(path, data, now())
    return done


def _strip_secrets(path: str, data: dict, now: float) -> None:
    lines = ["# Applied by the MIP.AI Box on %s; its secrets were removed." % time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                        time.gmtime(now))]  # fmt: skip
    lines.append('applied = "%s"' % time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)))
    if data.get("wifi", {}).get("ssid"):
        lines += ["[wifi]", "ssid = %s" % _quote(data["wifi"]["ssid"])]
    if data.get("time", {}).get("timezone"):
        lines += ["[time]", "timezone = %s" % _quote(data["time"]["timezone"])]
    temporary = path + ".new"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _quote(text: str) -> str:
    return '"%s"' % text.replace("\\", "\\\\").replace('"', '\\"')
