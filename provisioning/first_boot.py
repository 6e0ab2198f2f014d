"""The first-boot file on the boot partition (`mipai.toml`): Wi-Fi, fleet enrolment token, time zone and an SSH
key, applied once; then its secrets (and the [ssh] section) are removed so the SD card no longer carries them.

    [wifi]
    ssid = "Workshop"
    password = "..."
    [fleet]
    enrolment_token = "..."
    [time]
    timezone = "Europe/Berlin"
    [ssh]
    authorized_key = "ssh-ed25519 AAAA... owner@laptop"

What each setting does to the system is passed in (the network manager, a time-zone setter, an SSH enabler), so
the file's rules are the same wherever it is applied; `SshAccess` is the image's SSH enabler.
"""

import base64
import binascii
import os
import re
import subprocess
import time
import tomllib

KNOWN = {
    "wifi": {"ssid", "password"},
    "fleet": {"enrolment_token"},
    "time": {"timezone"},
    "ssh": {"authorized_key"},
}
_TIMEZONE = re.compile(r"[A-Za-z_]+(/[A-Za-z0-9_+\-]+){0,2}\Z")
SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
_SSH_KEY = re.compile(r"(\S+) ([A-Za-z0-9+/]+={0,3})( [ -~]{1,200})?\Z")


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
    key = data.get("ssh", {}).get("authorized_key") if isinstance(data.get("ssh"), dict) else None
    if isinstance(key, str):
        problem = ssh_key_problem(key)
        if problem:
            problems.append("ssh.authorized_key %s" % problem)
    if problems:
        raise FirstBootError("%s: %s" % (path, "; ".join(problems)))
    return data


def ssh_key_problem(key: str) -> str:
    """Why `key` is not one OpenSSH public key line ("" when it is): its type, its base64 body, nothing more."""
    if "PRIVATE KEY" in key:  # never logged or echoed: only that it is one
        return "is a private key: give the public one (the .pub file's line)"
    found = _SSH_KEY.match(key.strip())
    if not found:
        return 'must be one public key line such as "ssh-ed25519 AAAA... owner@laptop"'
    kind, body = found.group(1), found.group(2)
    if kind not in SSH_KEY_TYPES:
        return "has the unknown key type %r (one of %s)" % (kind[:40], ", ".join(SSH_KEY_TYPES))
    try:
        blob = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return "has a body that is not base64"
    # The body starts with its own type as an SSH string: a pasted private key or a cut line fails here.
    if len(blob) < 4 + len(kind) or blob[4 : 4 + len(kind)] != kind.encode() or blob[:4] != len(kind).to_bytes(4):
        return "has a body that is not a %s key" % kind
    return ""


def apply(path: str, data_dir: str, network, set_timezone, enable_ssh=None, now=time.time) -> list:
    """Apply the file once; return what was done. Secrets leave the file after they were applied.

    `enable_ssh(key)` turns SSH on for that key; where it is None (the daemon, which cannot manage SSH) an [ssh]
    section is noted and left out. SSH comes first: a box whose Wi-Fi join fails can still be reached by cable."""
    if not os.path.exists(path):
        return []
    data = read(path)
    if data.get("applied"):
        return []
    done = []
    key = data.get("ssh", {}).get("authorized_key")
    if key and enable_ssh is None:
        done.append("left [ssh] out: SSH is enabled by the image's first-boot service only")
    elif key:
        enable_ssh(key.strip())
        done.append("enabled SSH for root with the key %s" % key.split()[0])
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


class SshAccess:
    """SSH for root with one owner's key and nothing else: no passwords, one Ed25519 host key made on the card
    (an RSA key takes a minute on a Pi's first boot and more under emulation), the service started without
    waiting. The image's ssh.service is enabled with that host key as its condition, so making the key is what
    turns SSH on for later boots. Paths and the command runner are parameters so the code is tried on a test
    tree."""

    def __init__(self, root: str = "/", run=None) -> None:
        self.root = root
        self.run = run or _run

    def _path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def enable(self, key: str) -> None:
        problem = ssh_key_problem(key)
        if problem:
            raise FirstBootError("ssh.authorized_key %s" % problem)
        ssh_dir = self._path("root", ".ssh")
        os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
        keys_file = os.path.join(ssh_dir, "authorized_keys")
        present = []
        if os.path.exists(keys_file):
            with open(keys_file) as handle:
                present = handle.read().splitlines()
        if key.strip() not in (line.strip() for line in present):  # a boot that is tried again adds no copy
            with open(os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as handle:
                handle.write(key.strip() + "\n")
        os.chmod(keys_file, 0o600)
        host_key = self._path("etc", "ssh", "ssh_host_ed25519_key")
        os.makedirs(self._path("etc", "ssh", "sshd_config.d"), exist_ok=True)
        with open(self._path("etc", "ssh", "sshd_config.d", "mipai-box.conf"), "w") as handle:
            handle.write(
                "HostKey /etc/ssh/ssh_host_ed25519_key\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                "PermitRootLogin prohibit-password\n"
            )
        if not os.path.exists(host_key):
            self.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", host_key)
        # The image enables ssh.service with the host key as its condition, so it runs from now on, at every boot;
        # `systemctl enable` here would cost seconds (Debian's sysv-install step under a slow CPU).
        self.run("systemctl", "start", "--no-block", "ssh.service")  # no waiting on its ordering during boot


def _run(*command: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise OSError("%s failed: %s" % (command[0], (result.stderr or result.stdout).strip()[:300]))
