#!/bin/sh
# Runs inside the arm64 tree once, after debootstrap's second stage; its result is cached. Makes the system an
# appliance: the box's user, no passwords, SSH off and without host keys, no machine id, one initramfs.
set -eu
export DEBIAN_FRONTEND=noninteractive INITRD=No LC_ALL=C.UTF-8

# The box's own user: it owns the data directory and the printer port (dialout), nothing else.
getent group gpio >/dev/null || groupadd --system gpio
id mipai >/dev/null 2>&1 || useradd --system --user-group --groups dialout,gpio --home-dir /var/lib/mipai-box \
    --no-create-home --shell /usr/sbin/nologin mipai

# No default password anywhere: root is locked (SSH, when the first-boot file enables it, takes a key only).
passwd --lock root >/dev/null
systemctl disable ssh.service >/dev/null 2>&1 || true
rm -f /etc/ssh/ssh_host_*

# Nothing in the boot waits for the network, and no maintenance job of a server runs on the appliance: the
# wait-online services (the box serves its setup page without an uplink), e2fsprogs' scrub (LVM only), apt's
# daily list downloads (the image has no unattended upgrades), dpkg's database backup, the weekly fstrim.
systemctl mask systemd-networkd-wait-online.service NetworkManager-wait-online.service e2scrub_all.timer \
    e2scrub_reap.service apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer >/dev/null

# Made on the device's first boot, never shared between cards.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id

# One initramfs with the drivers of the root file system's disk only (MODULES=most takes over 10 minutes under
# emulation): the Pi 3/4 SD card and USB disks, the emulator's virtio disk; ext4.
echo MODULES=list > /etc/initramfs-tools/conf.d/mipai-modules
printf '%s\n' virtio_pci virtio_mmio virtio_blk sdhci_iproc bcm2835 mmc_block usb_storage uas dwc2 xhci_pci \
    pcie_brcmstb reset_raspberrypi ext4 >> /etc/initramfs-tools/modules
# raspi-firmware copies kernel, initramfs and device trees to the boot partition and writes cmdline.txt.
echo 'ROOTPART=LABEL=mipai-root' >> /etc/default/raspi-firmware
# A quiet kernel console: its messages through the UART cost boot time; errors still show (raspi-firmware appends
# this file to cmdline.txt).
echo 'quiet loglevel=3' > /etc/default/raspi-extra-cmdline
# Its hook wants /boot/firmware to be a mount point unless it detects a chroot: a bind mount of itself (private).
mkdir -p /boot/firmware
mount --bind /boot/firmware /boot/firmware
kernel=$(ls /lib/modules | sort -V | tail -1)
update-initramfs -c -k "$kernel"
umount /boot/firmware
test -e "/boot/firmware/vmlinuz-$kernel" && test -e /boot/firmware/cmdline.txt

rm -f /etc/dpkg/dpkg.cfg.d/mipai-build
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /var/log/apt/* /tmp/* /var/tmp/*
