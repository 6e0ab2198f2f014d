"""Wi-Fi, hotspot and host name through NetworkManager's `nmcli`. Secrets go to nmcli on standard input
(`--passwd-file /dev/stdin`), never on its command line where every user could read them."""

import subprocess

TIMEOUT_SECONDS = 60


class NetworkError(Exception):
    """nmcli failed or is missing; the message has its explanation."""


def _split_terse(line: str) -> list:
    """Fields of one `nmcli -t` line: ':' separates, '\\:' is a literal colon."""
    fields, current, escaped = [], "", False
    for char in line:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            fields.append(current)
            current = ""
        else:
            current += char
    fields.append(current)
    return fields


class NetworkManager:
    def __init__(self, interface: str = "wlan0", nmcli: str = "nmcli", run=subprocess.run) -> None:
        self.interface = interface
        self._nmcli = nmcli
        self._run = run

    def _call(self, *args: str, secret_input: str | None = None) -> str:
        try:
            result = self._run(
                [self._nmcli, *args],
                input=secret_input,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_SECONDS,
            )
        except FileNotFoundError:
            raise NetworkError("nmcli is not installed (NetworkManager is needed for Wi-Fi)") from None
        except subprocess.TimeoutExpired:
            raise NetworkError("nmcli did not answer within %d s" % TIMEOUT_SECONDS) from None
        if result.returncode != 0:
            raise NetworkError("nmcli %s failed: %s" % (args[0], (result.stderr or result.stdout).strip()[:300]))
        return result.stdout

    def scan(self) -> list:
        """Visible networks, strongest first: [{"ssid", "signal", "security"}]; hidden networks are left out."""
        output = self._call(
            "-t", "-f", "SSID,SIGNAL,SECURITY", "device", "wifi", "list", "ifname", self.interface, "--rescan", "yes"
        )
        networks = {}
        for line in output.splitlines():
            fields = _split_terse(line)
            if len(fields) != 3 or not fields[0]:
                continue
            ssid, signal, security = fields
            entry = {"ssid": ssid, "signal": int(signal) if signal.isdigit() else 0, "security": security}
            if ssid not in networks or entry["signal"] > networks[ssid]["signal"]:
                networks[ssid] = entry
        return sorted(networks.values(), key=lambda entry: -entry["signal"])

    def connect(self, ssid: str, password: str = "") -> None:
        """Join a Wi-Fi network (a saved connection named after the SSID), its password on standard input."""
        if not 1 <= len(ssid.encode()) <= 32:
            raise NetworkError("a Wi-Fi network name is 1 to 32 bytes")
        if password and not 8 <= len(password) <= 63:
            raise NetworkError("a WPA2 password is 8 to 63 characters")
        name = "mipai-wifi"
        if self.has_connection(name):
            self._call("connection", "delete", "id", name)
        self._call("connection", "add", "type", "wifi", "ifname", self.interface, "con-name", name, "ssid", ssid,
                   *(("wifi-sec.key-mgmt", "wpa-psk") if password else ()))  # fmt: skip
        if password:
            self._call("--passwd-file", "/dev/stdin", "connection", "up", "id", name,
                       secret_input="802-11-wireless-security.psk:%s\n" % password)  # fmt: skip
        else:
            self._call("connection", "up", "id", name)

    def has_connection(self, name: str) -> bool:
        output = self._call("-t", "-f", "NAME", "connection", "show")
        return any(_split_terse(line)[0] == name for line in output.splitlines())

    def start_hotspot(self, ssid: str, password: str) -> None:
        name = "mipai-hotspot"
        if self.has_connection(name):
            self._call("connection", "delete", "id", name)
        self._call("connection", "add", "type", "wifi", "ifname", self.interface, "con-name", name,
                   "autoconnect", "no", "ssid", ssid, "802-11-wireless.mode", "ap", "ipv4.method", "shared",
                   "wifi-sec.key-mgmt", "wpa-psk")  # fmt: skip
        self._call("--passwd-file", "/dev/stdin", "connection", "up", "id", name,
                   secret_input="802-11-wireless-security.psk:%s\n" % password)  # fmt: skip

    def stop_hotspot(self) -> None:
        self._call("connection", "down", "id", "mipai-hotspot")

    def has_uplink(self) -> bool:
        """True when NetworkManager reports full connectivity (an Ethernet or Wi-Fi uplink)."""
        return self._call("-t", "-f", "CONNECTIVITY", "general", "status").strip() == "full"

    def set_hostname(self, name: str) -> None:
        self._call("general", "hostname", name)
