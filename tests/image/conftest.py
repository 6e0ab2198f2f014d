"""The image tests boot the SD-card image under emulation (minutes): only `make image-test` runs them."""

import os

import pytest

ENABLE = "MIPAI_IMAGE_TEST"


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "image: boots the SD-card image in QEMU (make image-test)")


def pytest_collection_modifyitems(config, items) -> None:
    if os.environ.get(ENABLE) == "1":
        return
    skip = pytest.mark.skip(reason="boots the SD-card image: run by `make image-test`, not `make test`")
    for item in items:
        if "image" in item.keywords:
            item.add_marker(skip)
