"""Where the box keeps its keys, trust list, print counters and spool."""

import os

ENVIRONMENT = "MIPAI_BOX_DATA_DIR"


def default() -> str:
    """$MIPAI_BOX_DATA_DIR, else $XDG_DATA_HOME/mipai-box, else ~/.local/share/mipai-box."""
    if os.environ.get(ENVIRONMENT):
        return os.environ[ENVIRONMENT]
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "mipai-box")


def prepare(path: str) -> str:
    """Create the data directory (owner only) if needed and return its absolute path."""
    path = os.path.abspath(path)
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def trust_file(path: str) -> str:
    return os.path.join(path, "trust.json")


def ledger_file(path: str) -> str:
    return os.path.join(path, "prints.sqlite")


def spool_dir(path: str) -> str:
    spool = os.path.join(path, "spool")
    os.makedirs(spool, mode=0o700, exist_ok=True)
    return spool


def fleet_tls_files(path: str) -> dict:
    """Where `mipai-box enrol install` keeps the fleet CA, the box's certificate and its key in PEM."""
    directory = os.path.join(path, "fleet")
    return {name: os.path.join(directory, name) for name in ("ca.crt", "box.crt", "box.key")}
