"""When to open the setup hotspot, sans-I/O: fed the uplink state with the time, returns what to do.

The hotspot starts after the box has had no uplink for a while, or on request (a long button press); the box
scans for networks first, because one radio cannot scan while it is an access point. It stops when an uplink
is back (after the owner chose a network)."""

SCAN_THEN_START = "scan_then_start_hotspot"
STOP = "stop_hotspot"


class HotspotPolicy:
    def __init__(self, after_seconds: float) -> None:
        self.after_seconds = after_seconds
        self.active = False
        self._lost_since = None

    def update(self, uplink: bool, now: float) -> list:
        if uplink:
            self._lost_since = None
            if self.active:
                self.active = False
                return [STOP]
            return []
        if self._lost_since is None:
            self._lost_since = now
        if not self.active and now - self._lost_since >= self.after_seconds:
            self.active = True
            return [SCAN_THEN_START]
        return []

    def request(self) -> list:
        """The owner asked for the hotspot (setup mode from the button)."""
        if self.active:
            return []
        self.active = True
        return [SCAN_THEN_START]
