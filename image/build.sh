#!/usr/bin/env bash
# Build the MIP.AI Box SD-card image: dist/mipai-box-<version>-arm64.img.zst and its .sha256.
#
#   image/build.sh [--build-dir DIR] [--dist-dir DIR]
#
# Steps, each cached under the build folder (the first two are the slow ones):
#   1. packages   debootstrap downloads the Debian bookworm arm64 packages of image/packages.txt as one tarball
#   2. base       debootstrap's second stage under qemu-user (private namespaces), then image/chroot/base.sh
#   3. wheels     the box's wheel built from this checkout, its pinned dependencies as aarch64 wheels
#   4. rootfs     a copy of the base, the box's venv (image/chroot/box.sh), the files of image/rootfs/
#   5. assemble   a sparse disk file: sfdisk, FAT32 (mkfs.fat --offset + mcopy), ext4 (mkfs.ext4 -d), zstd
# Nothing is mounted on the host and nothing outside the build folder changes.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
# shellcheck source=image/lib.sh
. "$HERE/lib.sh"

BUILD=$REPO/build/image
DIST=$REPO/dist
while [ $# -gt 0 ]; do
    case $1 in
        --build-dir) BUILD=$(realpath -m "$2"); shift 2 ;;
        --dist-dir) DIST=$(realpath -m "$2"); shift 2 ;;
        *) die "unknown option $1 (usage: image/build.sh [--build-dir DIR] [--dist-dir DIR])" ;;
    esac
done

SUITE=bookworm
BOOT_MIB=256
BOOT_START=8192 # sectors of 512 bytes: the boot partition starts at 4 MiB
STARTED=$(date +%s)
step_started=$STARTED
step() { say "$* (after $(($(date +%s) - STARTED)) s)"; step_started=$(date +%s); }
step_done() { say "  done in $(($(date +%s) - step_started)) s"; }

[ "$(id -u)" = 0 ] || die "the image build runs as root (debootstrap, user namespaces with many ids)"
need_tools debootstrap:debootstrap qemu-aarch64-static:qemu-user-static sfdisk:fdisk mkfs.fat:dosfstools \
    mcopy:mtools mkfs.ext4:e2fsprogs zstd:zstd unshare:util-linux
mkdir -p "$BUILD/cache" "$DIST"
need_space 6 "$BUILD"
VERSION=$(python3 -c 'import tomllib; print(tomllib.load(open("'"$REPO"'/pyproject.toml", "rb"))["project"]["version"])')
IMAGE_NAME=mipai-box-$VERSION-arm64.img

# --- 1. packages: one tarball of .debs, made once per package list --------------------------------------------
PACKAGES=$(grep -v '^#' "$HERE/packages.txt" | grep -v '^[[:space:]]*$' | paste -sd, -)
PACKAGES_KEY=$(printf '%s %s\n' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-16)
TARBALL=$BUILD/cache/debs-$PACKAGES_KEY.tgz
if [ ! -s "$TARBALL" ]; then
    step "packages: downloading Debian $SUITE arm64 (main, non-free-firmware) for the package list"
    MIRROR=$(debian_mirror)
    rm -rf "$BUILD/tmp-debs" "$BUILD"/cache/debs-*.tgz*
    debootstrap --arch=arm64 --variant=minbase --components=main,non-free-firmware --include="$PACKAGES" \
        --make-tarball="$TARBALL.part" "$SUITE" "$BUILD/tmp-debs" "$MIRROR" >"$BUILD/debootstrap-download.log" 2>&1 \
        || die "debootstrap could not download the packages (is the Debian archive reachable?): see $BUILD/debootstrap-download.log"
    mv "$TARBALL.part" "$TARBALL"
    rm -rf "$BUILD/tmp-debs"
    step_done
fi

# --- 3. wheels: the box from this checkout; its pinned dependencies for aarch64 (cached) ----------------------
# Host work (pip, the network) that runs beside the emulated base step; its logs go to files.
WHEELS=$BUILD/wheels
DEPS_KEY=$(cat "$REPO/constraints.txt" "$REPO/pyproject.toml" | sha256sum | cut -c1-16)
DEPS=$BUILD/cache/deps-$DEPS_KEY
build_wheels() {
    rm -rf "$WHEELS" && mkdir -p "$WHEELS/app"
    python3 -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$WHEELS/app" "$REPO" >"$BUILD/wheel.log" 2>&1 \
        || die "building the box's wheel from $REPO failed: see $BUILD/wheel.log"
    app_wheel=$(ls "$WHEELS"/app/mipai_box-*.whl)
    if [ ! -e "$DEPS/.complete" ]; then
        rm -rf "$DEPS" && mkdir -p "$DEPS"
        # Bookworm has glibc 2.36 and CPython 3.11: every manylinux tag up to 2_36, cp311 or abi3 or pure.
        platforms=()
        for tag in manylinux_2_36 manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux2014; do
            platforms+=(--platform "${tag}_aarch64")
        done
        python3 -m pip download --quiet --disable-pip-version-check --only-binary=:all: "${platforms[@]}" \
            --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
            -c "$REPO/constraints.txt" -d "$DEPS" "$app_wheel[device]" \
            >"$BUILD/deps.log" 2>&1 || die "no aarch64 wheels for the box's pinned dependencies (PyPI reachable?): see $BUILD/deps.log"
        rm -f "$DEPS"/mipai_box-*.whl
        touch "$DEPS/.complete"
    fi
}
step "wheels: the box's wheel from this checkout, its dependencies for linux aarch64 (beside the base step)"
build_wheels &
wheels=$!

# --- 2. base: second stage under qemu-user, then the appliance settings; keyed by the exact .debs -------------
BASE_KEY=$( { tar tzf "$TARBALL" | grep '\.deb$' | sort; cat "$HERE/chroot/base.sh" "$HERE/chroot/dpkg-excludes"; } \
    | sha256sum | cut -c1-16)
BASE=$BUILD/cache/base-$BASE_KEY
if [ ! -e "$BASE/.complete" ]; then
    step "base: unpacking and configuring Debian under qemu-user (the slow step, several minutes)"
    rm -rf "$BASE" "$BUILD"/cache/base-*
    MIRROR=$(debian_mirror)
    debootstrap --arch=arm64 --variant=minbase --components=main,non-free-firmware --include="$PACKAGES" \
        --foreign --unpack-tarball="$TARBALL" "$SUITE" "$BASE" "$MIRROR" >"$BUILD/debootstrap-first.log" 2>&1 \
        || die "debootstrap's first stage failed: see $BUILD/debootstrap-first.log"
    say "  first stage done in $(($(date +%s) - step_started)) s; second stage (dpkg under emulation)"
    # dpkg without fsync while building (removed by base.sh); no manuals, translations or docs on the card.
    mkdir -p "$BASE/etc/dpkg/dpkg.cfg.d" "$BASE/etc/ssh"
    echo force-unsafe-io >"$BASE/etc/dpkg/dpkg.cfg.d/mipai-build"
    cp "$HERE/chroot/dpkg-excludes" "$BASE/etc/dpkg/dpkg.cfg.d/mipai-excludes"
    # openssh-server's postinst makes host keys only where none exist: placeholders spare the RSA key's minute
    # under emulation; base.sh removes them (each card makes its own key when SSH is enabled).
    for kind in rsa ecdsa ed25519; do : >"$BASE/etc/ssh/ssh_host_${kind}_key"; done
    # container=lxc: debootstrap then uses the bind-mounted /dev instead of making device nodes (not allowed here)
    in_arm64_root "$BASE" /usr/bin/env INITRD=No container=lxc /debootstrap/debootstrap --second-stage \
        >"$BUILD/debootstrap-second.log" 2>&1 &
    second=$!
    while kill -0 "$second" 2>/dev/null; do
        sleep 20
        kill -0 "$second" 2>/dev/null && say "  ... $(grep -c '^Status: install ok installed' \
            "$BASE/var/lib/dpkg/status" 2>/dev/null || true) of $(tar tzf "$TARBALL" | grep -c '\.deb$') packages installed"
    done
    wait "$second" || die "debootstrap's second stage failed: see $BUILD/debootstrap-second.log"
    # dpkg's own log (base.sh clears /var/log): where the second stage's time went, package by package.
    cp "$BASE/var/log/dpkg.log" "$BUILD/dpkg-second-stage.log" 2>/dev/null || true
    # The device's own apt sources: the archive this build used, with the firmware component.
    cat >"$BASE/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main non-free-firmware
deb $MIRROR $SUITE-updates main non-free-firmware
SOURCES
    cp "$HERE/chroot/base.sh" "$BASE/tmp/base.sh"
    in_arm64_root "$BASE" /bin/sh /tmp/base.sh >"$BUILD/base.log" 2>&1 \
        || die "configuring the base system failed: see $BUILD/base.log"
    touch "$BASE/.complete"
    step_done
fi

wait "$wheels" || exit 1
APP_WHEEL=$(ls "$WHEELS"/app/mipai_box-*.whl)
say "  wheels ready (after $(($(date +%s) - STARTED)) s)"

# --- 4. rootfs: the cached base, plus the box --------------------------------------------------------------------
step "rootfs: copying the base, installing the box into its venv (under qemu-user)"
ROOT=$BUILD/rootfs
rm -rf "$ROOT"
cp -a "$BASE" "$ROOT"
rm -f "$ROOT/.complete"
mkdir -p "$ROOT/tmp/wheels"
cp "$APP_WHEEL" "$DEPS"/*.whl "$ROOT/tmp/wheels/"
cp "$REPO/constraints.txt" "$ROOT/tmp/wheels/constraints.txt"
cp -a "$HERE/rootfs/." "$ROOT/"
chown -R root:root "$ROOT/etc/mipai-box" "$ROOT/usr/lib/mipai-box" "$ROOT/etc/systemd/system"
cp "$HERE/chroot/box.sh" "$ROOT/tmp/box.sh"
in_arm64_root "$ROOT" /bin/sh /tmp/box.sh "$(basename "$APP_WHEEL")" >"$BUILD/box.log" 2>&1 \
    || die "installing the box into the image failed: see $BUILD/box.log"
printf 'MIPAI_BOX_IMAGE_VERSION=%s\nMIPAI_BOX_IMAGE_BUILT=%s\nMIPAI_BOX_SOURCE=%s\n' "$VERSION" \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(git -C "$REPO" describe --always --dirty 2>/dev/null || echo unknown)" \
    >"$ROOT/etc/mipai-box/image-release"
step_done

# --- 5. assemble: partitions on a sparse file, file systems written without mounting -----------------------------
step "assemble: partition table, FAT32 boot partition, ext4 root, zstd"
BOOTFILES=$BUILD/bootfiles
rm -rf "$BOOTFILES" && mv "$ROOT/boot/firmware" "$BOOTFILES" && mkdir -p "$ROOT/boot/firmware"
cp "$HERE/boot/mipai.toml.example" "$HERE/boot/README.txt" "$BOOTFILES/"
ROOT_KIB=$(du -sk --apparent-size "$ROOT" | cut -f1)
ROOT_MIB=$(( (ROOT_KIB * 13 / 10) / 1024 + 256 )) # 30 % + 256 MiB headroom; the first boot grows it to the card
ROOT_START=$(( BOOT_START + BOOT_MIB * 2048 ))
IMG=$BUILD/$IMAGE_NAME
rm -f "$IMG"
truncate -s $(( (ROOT_START / 2048 + ROOT_MIB) ))M "$IMG"
sfdisk --quiet "$IMG" <<TABLE
label: dos
unit: sectors
start=$BOOT_START, size=$(( BOOT_MIB * 2048 )), type=c, bootable
start=$ROOT_START, type=83
TABLE
# One sector a cluster: enough clusters for FAT32 on 256 MiB.
mkfs.fat -F 32 -s 1 -n MIPAI-BOOT --offset "$BOOT_START" "$IMG" $(( BOOT_MIB * 1024 )) >/dev/null 2>&1 \
    || die "mkfs.fat could not write the boot partition"
MTOOLS_SKIP_CHECK=1 mcopy -i "$IMG@@$(( BOOT_START * 512 ))" -s -Q "$BOOTFILES"/* ::/
mkfs.ext4 -q -F -L mipai-root -d "$ROOT" -E offset=$(( ROOT_START * 512 )) "$IMG" "${ROOT_MIB}M" \
    || die "mkfs.ext4 could not write the root file system"
say "  disk image $(du -h --apparent-size "$IMG" | cut -f1) (sparse, $(du -h "$IMG" | cut -f1) used); compressing"
zstd -q -f -T2 -9 "$IMG" -o "$DIST/$IMAGE_NAME.zst"
(cd "$DIST" && sha256sum "$IMAGE_NAME.zst" >"$IMAGE_NAME.zst.sha256")
step_done
say "image $DIST/$IMAGE_NAME.zst ($(du -h "$DIST/$IMAGE_NAME.zst" | cut -f1)) built in $(($(date +%s) - STARTED)) s"
