#!/bin/sh
# Runs inside the arm64 tree on every build: the box's venv from the wheels in /tmp/wheels, its units enabled.
set -eu
export LC_ALL=C.UTF-8
wheel=$1
# System site packages: RPi.GPIO (Debian's python3-rpi.gpio) is gpiozero's pin library on the Pi.
python3 -m venv --system-site-packages /opt/mipai-box
/opt/mipai-box/bin/pip install --quiet --disable-pip-version-check --no-index --find-links /tmp/wheels \
    -c /tmp/wheels/constraints.txt "/tmp/wheels/$wheel"
/opt/mipai-box/bin/mipai-box --help >/dev/null
systemctl enable mipai-firstboot.service mipai-box.service
rm -rf /tmp/wheels /tmp/box.sh /root/.cache
