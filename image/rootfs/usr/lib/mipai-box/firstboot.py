"""Boot-time duties of the MIP.AI Box image, run as root before the box starts (mipai-firstboot.service).

Once per card: grow the root partition and file system to the card. On every boot, each only when its file is
there: take `mipai-box.toml` from the boot partition as the box's settings; apply `mipai.toml` once (SSH key,
Wi-Fi, fleet enrolment token, time zone) through `provisioning.first_boot`, which then removes its secrets and
the [ssh] section from the card.
"""

import grp
import os
import pwd
import subprocess
import sys
import tomllib

from provisioning import first_boot
from provisioning.network_manager import NetworkError, NetworkManager

BOOT = "/boot/firmware"
FIRST_BOOT_FILE = os.path.join(BOOT, "mipai.toml")
SETTINGS_FROM_BOOT = os.path.join(BOOT, "mipai-box.toml")
SETTINGS = "/etc/mipai-box/box.toml"
DATA_DIR = "/var/lib/mipai-box"
STATE_DIR = "/var/lib/mipai-firstboot"
USER = "mipai"
MAX_FILE_BYTES = 64 * 1024


def log(message: str) -> None:
    """One line to the journal (no secrets are ever passed here)."""
    print("mipai-firstboot: %s" % message, flush=True)


def run(*command: str) -> str:
    """Run a system command; its failure is raised with the command's own message."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError("%s failed: %s" % (command[0], (result.stderr or result.stdout).strip()[:300]))
    return result.stdout


def grow_root() -> None:
    """Grow the root partition (the last one) and its ext4 file system to the end of the card, once."""
    marker = os.path.join(STATE_DIR, "root-grown")
    if os.path.exists(marker):
        return
    source = run("findmnt", "-n", "-o", "SOURCE", "/").strip()
    disk = "/dev/" + run("lsblk", "-n", "-o", "PKNAME", source).strip()
    with open("/sys/class/block/%s/partition" % os.path.basename(source)) as handle:
        number = handle.read().strip()
    subprocess.run(["sfdisk", "--no-reread", "--no-tell-kernel", "-N", number, disk], input=", +\n", text=True,
                   capture_output=True, check=True, timeout=60)  # fmt: skip
    run("partx", "-u", "-n", number, disk)
    run("resize2fs", source)
    os.makedirs(STATE_DIR, exist_ok=True)
    open(marker, "w").close()
    log("root file system grown to the card (%s)" % disk)


def take_settings() -> None:
    """mipai-box.toml on the boot partition becomes the box's settings file (the daemon validates it)."""
    if not os.path.exists(SETTINGS_FROM_BOOT):
        return
    with open(SETTINGS_FROM_BOOT, "rb") as handle:
        text = handle.read(MAX_FILE_BYTES + 1)
    if len(text) > MAX_FILE_BYTES:
        log("%s is over %d bytes; not used" % (SETTINGS_FROM_BOOT, MAX_FILE_BYTES))
        return
    try:
        tomllib.loads(text.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        log("%s is not valid TOML, the settings stay as they were: %s" % (SETTINGS_FROM_BOOT, exc))
        return
    temporary = SETTINGS + ".new"
    with open(temporary, "wb") as handle:
        handle.write(text)
    os.chmod(temporary, 0o644)
    os.replace(temporary, SETTINGS)
    os.replace(SETTINGS_FROM_BOOT, SETTINGS_FROM_BOOT + ".applied")
    log("settings taken from %s" % SETTINGS_FROM_BOOT)


def set_timezone(zone: str) -> None:
    """The zone for local times (a link, no D-Bus needed this early); refused when the zone is unknown."""
    target = os.path.join("/usr/share/zoneinfo", zone)
    if not os.path.isfile(target):
        raise ValueError("unknown time zone %s" % zone)
    temporary = "/etc/localtime.new"
    if os.path.lexists(temporary):
        os.remove(temporary)
    os.symlink(target, temporary)
    os.replace(temporary, "/etc/localtime")
    with open("/etc/timezone", "w") as handle:
        handle.write(zone + "\n")


def apply_first_boot_file() -> None:
    """mipai.toml, once: SSH, Wi-Fi, enrolment token (kept for the box's user), time zone; then its secrets go."""
    if not os.path.exists(FIRST_BOOT_FILE):
        return
    os.makedirs(DATA_DIR, mode=0o700, exist_ok=True)
    try:
        ssh = first_boot.SshAccess()
        done = first_boot.apply(FIRST_BOOT_FILE, DATA_DIR, NetworkManager(), set_timezone, ssh.enable)
    except (first_boot.FirstBootError, NetworkError, ValueError, OSError) as exc:
        log("%s not applied (it is tried again at the next boot): %s" % (FIRST_BOOT_FILE, exc))
        return
    for step in done:
        log(step)
    user, group = pwd.getpwnam(USER).pw_uid, grp.getgrnam(USER).gr_gid
    for name in [DATA_DIR] + [os.path.join(DATA_DIR, entry) for entry in os.listdir(DATA_DIR)]:
        os.chown(name, user, group)


def main() -> int:
    """Each duty on its own: one failing does not keep the others (or the box) from running."""
    status = 0
    for duty in (grow_root, take_settings, apply_first_boot_file):
        try:
            duty()
        except (OSError, RuntimeError, subprocess.SubprocessError, KeyError) as exc:
            log("%s: %s" % (duty.__name__, exc))
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
