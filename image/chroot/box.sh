#!/bin/sh
# Runs inside the arm64 tree on every build: the box's venv from the wheels in /tmp/wheels, its units enabled.
set -eu
export LC_ALL=C.UTF-8
wheel=$1
# The device extra: lgpio, gpiozero's pin library on the Pi (through /dev/gpiochip*; Debian's kernel has no
# /dev/gpiomem, which Debian's python3-rpi.gpio needs).
python3 -m venv /opt/mipai-box
/opt/mipai-box/bin/pip install --quiet --disable-pip-version-check --no-index --find-links /tmp/wheels \
    -c /tmp/wheels/constraints.txt "/tmp/wheels/$wheel[device]"
/opt/mipai-box/bin/mipai-box --help >/dev/null
# ssh.service runs only once the first boot made its host key (ssh.service.d/mipai-box.conf).
systemctl enable mipai-firstboot.service mipai-box.service ssh.service
rm -rf /tmp/wheels /tmp/box.sh /root/.cache
