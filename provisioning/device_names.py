"""Names a box shows on the network, derived from its identity: host name, hotspot SSID and hotspot password."""

import base64
import hashlib
import hmac


def device_name(box_id: str) -> str:
    """Host and mDNS name: `mipai-` and the first four characters of the box id."""
    return "mipai-" + box_id[:4]


def hotspot_ssid(box_id: str) -> str:
    return "MIPAI-" + box_id[:4].upper()


def hotspot_password(signing_secret: bytes) -> str:
    """A per-device WPA2 password (16 characters), stable for the box, derived from its secret key."""
    digest = hmac.new(signing_secret, b"mipai hotspot password", hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:16].lower()
