"""Provisioning: the exact nmcli invocations (a recording stand-in first on PATH), the hotspot policy, the claim
code, device names and the first-boot file (with its SSH key, applied to a test tree)."""

import json
import os

import pytest

from provisioning import device_names, first_boot
from provisioning.claim_code import ClaimCodes
from provisioning.hotspot_policy import SCAN_THEN_START, STOP, HotspotPolicy
from provisioning.network_manager import NetworkError, NetworkManager
from tests.nmcli_stand_in import install_nmcli


@pytest.fixture
def nmcli(tmp_path, monkeypatch):
    folder = install_nmcli(tmp_path / "bin")
    log = tmp_path / "nmcli.log"
    monkeypatch.setenv("PATH", "%s:%s" % (folder, os.environ["PATH"]))
    monkeypatch.setenv("NMCLI_LOG", str(log))

    def calls() -> list:
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines()]

    return calls


def test_scan_lists_networks_strongest_first(nmcli):
    networks = NetworkManager().scan()
    assert networks == [
        {"ssid": "Workshop", "signal": 72, "security": "WPA2"},
        {"ssid": "Caf:e", "signal": 40, "security": "WPA1 WPA2"},
    ]
    assert nmcli()[0]["args"] == [
        "-t", "-f", "SSID,SIGNAL,SECURITY", "device", "wifi", "list", "ifname", "wlan0", "--rescan", "yes",
    ]  # fmt: skip


def test_joining_wifi_keeps_the_password_off_the_command_line(nmcli, monkeypatch):
    monkeypatch.setenv("NMCLI_CONNECTIONS", "mipai-wifi\nWired connection 1")
    NetworkManager().connect("Workshop", "s3cret-passphrase")
    calls = nmcli()
    assert [call["args"] for call in calls] == [
        ["-t", "-f", "NAME", "connection", "show"],
        ["connection", "delete", "id", "mipai-wifi"],
        ["connection", "add", "type", "wifi", "ifname", "wlan0", "con-name", "mipai-wifi", "ssid", "Workshop",
         "wifi-sec.key-mgmt", "wpa-psk"],
        ["--passwd-file", "/dev/stdin", "connection", "up", "id", "mipai-wifi"],
    ]  # fmt: skip
    assert calls[-1]["stdin"] == "802-11-wireless-security.psk:s3cret-passphrase\n"
    assert not any("s3cret-passphrase" in arg for call in calls for arg in call["args"])


def test_the_hotspot_and_the_host_name(nmcli):
    manager = NetworkManager()
    manager.start_hotspot("MIPAI-AB12", "hotspotpassword1")
    manager.stop_hotspot()
    manager.set_hostname("mipai-ab12")
    assert [call["args"] for call in nmcli()] == [
        ["-t", "-f", "NAME", "connection", "show"],
        ["connection", "add", "type", "wifi", "ifname", "wlan0", "con-name", "mipai-hotspot", "autoconnect", "no",
         "ssid", "MIPAI-AB12", "802-11-wireless.mode", "ap", "ipv4.method", "shared", "wifi-sec.key-mgmt",
         "wpa-psk"],
        ["--passwd-file", "/dev/stdin", "connection", "up", "id", "mipai-hotspot"],
        ["connection", "down", "id", "mipai-hotspot"],
        ["general", "hostname", "mipai-ab12"],
    ]  # fmt: skip


def test_nmcli_failures_and_bad_input_are_explained(nmcli, monkeypatch):
    monkeypatch.setenv("NMCLI_FAIL", "up")
    with pytest.raises(NetworkError, match="Secrets were required"):
        NetworkManager().connect("Workshop", "wrong password")
    with pytest.raises(NetworkError, match="8 to 63 characters"):
        NetworkManager().connect("Workshop", "short")
    with pytest.raises(NetworkError, match="1 to 32 bytes"):
        NetworkManager().connect("x" * 33, "long enough pass")
    with pytest.raises(NetworkError, match="nmcli is not installed"):
        NetworkManager(nmcli="nmcli-that-does-not-exist").scan()
    monkeypatch.setenv("NMCLI_CONNECTIVITY", "none")
    assert NetworkManager().has_uplink() is False


def test_the_hotspot_opens_after_the_uplink_is_gone_for_a_while():
    policy = HotspotPolicy(after_seconds=120)
    assert policy.update(True, 0) == []
    assert policy.update(False, 10) == []
    assert policy.update(False, 129) == []
    assert policy.update(False, 130) == [SCAN_THEN_START]
    assert policy.update(False, 500) == []
    assert policy.update(True, 510) == [STOP]
    assert policy.request() == [SCAN_THEN_START] and policy.request() == []


def test_claim_codes_are_single_use_and_expire(tmp_path):
    codes = ClaimCodes(str(tmp_path / "claim.json"))
    code, expires = codes.current(now=1000.0, lifetime=600)
    assert len(code) == 9 and code[4] == "-" and expires == 1600.0
    assert codes.current(now=1500.0) == (code, expires)  # the same code until it expires
    assert oct((tmp_path / "claim.json").stat().st_mode & 0o777) == "0o600"
    assert not codes.consume("WRONG-CODE", now=1100.0)
    assert codes.consume(code.lower().replace("-", " "), now=1100.0)
    assert not codes.consume(code, now=1100.0)  # single use
    second, _ = codes.current(now=1200.0)
    assert not codes.consume(second, now=99999.0)  # expired
    assert codes.current(now=99999.0)[0] != second


def test_device_names_come_from_the_box_identity():
    assert device_names.device_name("ab12cdefghijklmn") == "mipai-ab12"
    assert device_names.hotspot_ssid("ab12cdefghijklmn") == "MIPAI-AB12"
    password = device_names.hotspot_password(bytes(32))
    assert len(password) == 16 and password == device_names.hotspot_password(bytes(32))
    assert password != device_names.hotspot_password(bytes([1] * 32))


def test_the_first_boot_file_is_applied_once_and_loses_its_secrets(tmp_path, nmcli):
    boot = tmp_path / "mipai.toml"
    boot.write_text(
        '[wifi]\nssid = "Workshop"\npassword = "s3cret-passphrase"\n[fleet]\nenrolment_token = "tok-123456"\n'
        '[time]\ntimezone = "Europe/Berlin"\n'
    )
    zones = []
    data = tmp_path / "data"
    data.mkdir()
    done = first_boot.apply(str(boot), str(data), NetworkManager(), zones.append, now=lambda: 1_800_000_000)
    assert done == ["joined Wi-Fi 'Workshop'", "kept the fleet enrolment token", "set the time zone to Europe/Berlin"]
    assert zones == ["Europe/Berlin"]
    assert (data / "enrolment_token").read_text() == "tok-123456"
    assert oct((data / "enrolment_token").stat().st_mode & 0o777) == "0o600"
    text = boot.read_text()
    assert "s3cret" not in text and "tok-123456" not in text and 'ssid = "Workshop"' in text
    calls = len(nmcli())
    assert first_boot.apply(str(boot), str(data), NetworkManager(), zones.append) == []  # applied once
    assert len(nmcli()) == calls


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('[wifi]\npassword = "x"\n', "wifi.password is given without wifi.ssid"),
        ('[wlan]\nssid = "x"\n', "unknown section [wlan]"),
        ('[time]\ntimezone = "../../etc/passwd"\n', "is not a zone name"),
        ("[wifi\n", "is not valid TOML"),
        ('[ssh]\nauthorized_key = "AAAAC3NzaC1lZDI1NTE5"\n', "must be one public key line"),
        ('[ssh]\nauthorized_key = "ssh-dss AAAAB3NzaC1kc3M="\n', "unknown key type 'ssh-dss'"),
        ('[ssh]\nauthorized_key = "ssh-ed25519 AAAAB3NzaC1yc2E="\n', "is not a ssh-ed25519 key"),
        ('[ssh]\nauthorized_key = "-----BEGIN OPENSSH PRIVATE KEY-----"\n', "is a private key: give the public one"),
        ('[ssh]\nkey = "ssh-ed25519 AAAA"\n', "unknown setting ssh.key"),
    ],
)
def test_a_malformed_first_boot_file_applies_nothing(tmp_path, nmcli, content, problem):
    boot = tmp_path / "mipai.toml"
    boot.write_text(content)
    with pytest.raises(first_boot.FirstBootError, match=r"mipai\.toml") as refused:
        first_boot.apply(str(boot), str(tmp_path), NetworkManager(), lambda zone: None)
    assert problem in str(refused.value)
    assert boot.read_text() == content and nmcli() == []


OWNER_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHdGr0GMvmFAa2Ob1FKc/7HKjJ/ZT7UoN4Ewrf0AN5Yb owner@laptop"


def test_the_ssh_key_of_the_first_boot_file_enables_key_only_ssh_once(tmp_path, nmcli):
    boot = tmp_path / "mipai.toml"
    boot.write_text('[time]\ntimezone = "UTC"\n[ssh]\nauthorized_key = "%s"\n' % OWNER_KEY)
    system, commands = tmp_path / "system", []

    def run(*command):  # ssh-keygen and systemctl of the device, recorded; the key file as ssh-keygen leaves it
        commands.append(command)
        if command[0] == "ssh-keygen":
            open(command[command.index("-f") + 1], "w").close()

    access = first_boot.SshAccess(root=str(system), run=run)
    done = first_boot.apply(str(boot), str(tmp_path), NetworkManager(), lambda zone: None, access.enable)
    assert done[0] == "enabled SSH for root with the key ssh-ed25519"
    keys = system / "root" / ".ssh" / "authorized_keys"
    assert keys.read_text() == OWNER_KEY + "\n" and oct(keys.stat().st_mode & 0o777) == "0o600"
    assert oct((system / "root" / ".ssh").stat().st_mode & 0o777) == "0o700"
    config = (system / "etc/ssh/sshd_config.d/mipai-box.conf").read_text().splitlines()
    assert "PasswordAuthentication no" in config and "PermitRootLogin prohibit-password" in config
    assert "HostKey /etc/ssh/ssh_host_ed25519_key" in config
    # One Ed25519 host key (not `ssh-keygen -A`, whose RSA key costs a minute on the first boot), then the service.
    host_key = str(system / "etc/ssh/ssh_host_ed25519_key")
    assert commands == [
        ("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", host_key),
        ("systemctl", "start", "--no-block", "ssh.service"),
    ]
    assert "[ssh]" not in boot.read_text() and "applied" in boot.read_text()

    # A card set up again with the same key: no second copy of it, the host key kept.
    boot.write_text('[ssh]\nauthorized_key = "%s"\n' % OWNER_KEY)
    first_boot.apply(str(boot), str(tmp_path), NetworkManager(), lambda zone: None, access.enable)
    assert keys.read_text() == OWNER_KEY + "\n"
    assert commands[2:] == [("systemctl", "start", "--no-block", "ssh.service")]


def test_where_nothing_manages_ssh_the_key_is_left_out_and_the_rest_applied(tmp_path, nmcli):
    boot = tmp_path / "mipai.toml"
    boot.write_text('[fleet]\nenrolment_token = "tok-123456"\n[ssh]\nauthorized_key = "%s"\n' % OWNER_KEY)
    done = first_boot.apply(str(boot), str(tmp_path), NetworkManager(), lambda zone: None)
    assert done == ["left [ssh] out: SSH is enabled by the image's first-boot service only",
                    "kept the fleet enrolment token"]  # fmt: skip
    assert "[ssh]" not in boot.read_text() and "tok-123456" not in boot.read_text()


def test_the_daemons_network_watch_opens_and_closes_the_hotspot(tmp_path, nmcli, monkeypatch):
    from box.device.network_watch import NetworkWatch
    from box.settings import Settings
    from provisioning import identity

    box = identity.load_or_create(str(tmp_path / "data"))
    settings = Settings.from_mapping({"network": {"manage_wifi": True, "hotspot_after_seconds": 10}}, "test")
    watch = NetworkWatch(settings.network, settings.setup.first_boot_file, str(tmp_path / "data"), box)
    watch.policy = HotspotPolicy(after_seconds=0)
    monkeypatch.setenv("NMCLI_CONNECTIVITY", "none")
    watch.set_hostname()
    watch.check()
    assert [n["ssid"] for n in watch.networks] == ["Workshop", "Caf:e"]
    monkeypatch.setenv("NMCLI_CONNECTIVITY", "full")
    watch.check()
    args = [call["args"] for call in nmcli()]
    ssid = device_names.hotspot_ssid(box.box_id)
    assert args[0] == ["general", "hostname", device_names.device_name(box.box_id)]
    assert args[2][3:5] == ["device", "wifi"]  # the scan comes before the access point takes the radio
    assert ["connection", "add", "type", "wifi", "ifname", "wlan0", "con-name", "mipai-hotspot", "autoconnect", "no",
            "ssid", ssid, "802-11-wireless.mode", "ap", "ipv4.method", "shared", "wifi-sec.key-mgmt",
            "wpa-psk"] in args  # fmt: skip
    up = next(call for call in nmcli() if call["args"][-3:] == ["up", "id", "mipai-hotspot"])
    assert up["stdin"] == "802-11-wireless-security.psk:%s\n" % device_names.hotspot_password(
        box.signing.private_bytes_raw()
    )
    assert args[-2:] == [
        ["-t", "-f", "CONNECTIVITY", "general", "status"],
        ["connection", "down", "id", "mipai-hotspot"],
    ]
