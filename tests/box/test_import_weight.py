"""What the box daemon loads: the network's chain libraries and cryptography's x509 cost it about 30 MB of its
60 MB budget on a Pi, and the daemon needs neither while it runs."""

import subprocess
import sys

HEAVY = ("eth_account", "eth_keys", "web3", "eth_tester", "py_ecc", "cryptography.x509", "sqlite_utils")


def test_the_daemon_and_its_command_line_load_no_chain_library():
    probe = "import sys, box.cli.main, box.cli.run, box.daemon\nprint(' '.join(m for m in %r if m in sys.modules))" % (
        HEAVY,
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
