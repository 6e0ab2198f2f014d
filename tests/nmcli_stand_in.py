"""A recording stand-in for NetworkManager's `nmcli` (the Wi-Fi radio is the hardware the tests lack): it logs
every call to $NMCLI_LOG and answers scans, connection lists and connectivity checks from canned text."""

import pathlib
import textwrap

STAND_IN = textwrap.dedent(
    """\
    #!/usr/bin/env python3
    import json, os, sys
    args = sys.argv[1:]
    stdin = "" if sys.stdin.isatty() else sys.stdin.read()
    with open(os.environ["NMCLI_LOG"], "a") as log:
        log.write(json.dumps({"args": args, "stdin": stdin}) + "\\n")
    if "list" in args and "wifi" in args:
        print("Workshop:72:WPA2")
        print("Caf\\\\:e:40:WPA1 WPA2")
        print(":90:WPA2")
        print("Workshop:35:WPA2")
    elif args[-2:] == ["connection", "show"]:
        print(os.environ.get("NMCLI_CONNECTIONS", ""))
    elif "CONNECTIVITY" in args:
        print(os.environ.get("NMCLI_CONNECTIVITY", "full"))
    elif args[:1] == ["fail"]:
        sys.exit(1)
    if os.environ.get("NMCLI_FAIL") and os.environ["NMCLI_FAIL"] in args:
        print("Error: Connection activation failed: Secrets were required", file=sys.stderr)
        sys.exit(4)
    """
)


def install_nmcli(folder: pathlib.Path) -> pathlib.Path:
    """Writes the stand-in as `folder/nmcli` (executable) and returns the folder, to go first on PATH."""
    folder.mkdir()
    script = folder / "nmcli"
    script.write_text(STAND_IN)
    script.chmod(0o755)
    return folder
