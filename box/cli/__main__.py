"""`python -m box.cli`: the same as `mipai-box`."""

import sys

from box.cli.main import main

sys.exit(main())
