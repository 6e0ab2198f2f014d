# Shared helpers of the image scripts (sourced, not run).
# shellcheck shell=bash

say() { printf '[image %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { printf 'image: error: %s\n' "$*" >&2; exit 1; }

# The Debian mirror this machine's apt already uses (bookworm's main archive), read at run time.
debian_mirror() {
    local uri
    uri=$(python3 - <<'PY'
import glob, re
found = []
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(path).read().split("\n\n"):
        fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.M))
        if "bookworm" in fields.get("Suites", "").split() and fields.get("URIs"):
            found.append(fields["URIs"].split()[0])
for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        parts = re.sub(r"\[[^]]*\]", "", line).split()
        if len(parts) >= 3 and parts[0] == "deb" and parts[2] == "bookworm":
            found.append(parts[1])
print(found[0] if found else "")
PY
)
    [ -n "$uri" ] || die "no Debian bookworm archive in this machine's apt sources (/etc/apt/sources.list*): the image is built from it"
    printf '%s\n' "${uri%/}"
}

# Install the Debian packages that provide the given commands, when any is missing ("command:package" pairs).
need_tools() {
    local pair missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing tools (packages ${missing[*]}); install them or run as root"
    say "installing build tools: ${missing[*]}"
    apt-get update -qq || die "apt-get update failed: the Debian archive is not reachable"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "could not install ${missing[*]}"
}

# Fail early when the build folder's file system has less than $1 GiB free.
need_space() {
    local free
    free=$(df -Pk "$2" | awk 'NR==2 {print int($4 / 1048576)}')
    [ "$free" -ge "$1" ] || die "$2 has ${free} GiB free; the image build needs about $1 GiB"
}

# The ELF header of an aarch64 executable, as binfmt_misc matches it (magic and mask).
AARCH64_MAGIC='\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00'
AARCH64_MASK='\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff'

# Run a command in the arm64 tree $1 (chroot), under qemu-user, in private user, mount and PID namespaces with
# their own binfmt_misc instance: nothing outside the build (the host's binfmt handlers, its mounts) changes.
# The user namespace maps ids 0-65535 to themselves, so file owners in the tree stay what dpkg made them.
in_arm64_root() {
    local root=$1 fifo pid status=0
    shift
    fifo=$(mktemp -u "${TMPDIR:-/tmp}/mipai-image-ns.XXXXXX")
    mkfifo "$fifo"
    ROOT=$root FIFO=$fifo QEMU=$(command -v qemu-aarch64-static) MAGIC=$AARCH64_MAGIC MASK=$AARCH64_MASK \
        unshare --user --mount --pid --fork --kill-child sh -ec '
            read -r _ < "$FIFO"
            mount -t binfmt_misc mipai-image /proc/sys/fs/binfmt_misc
            printf ":qemu-aarch64:M::%b:%b:%s:FC" "$MAGIC" "$MASK" "$QEMU" > /proc/sys/fs/binfmt_misc/register
            mount -t proc proc "$ROOT/proc"
            mount --rbind /dev "$ROOT/dev"
            mount --rbind /sys "$ROOT/sys"
            mount -t tmpfs -o mode=755 tmpfs "$ROOT/run"
            exec chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LC_ALL=C.UTF-8 "$@"' \
            in-arm64-root "$@" &
    pid=$!
    # Root of the host may map any ids into the new user namespace: ids 0-65535 onto themselves.
    for _ in $(seq 50); do
        [ "$(readlink "/proc/$pid/ns/user")" != "$(readlink /proc/self/ns/user)" ] && break
        sleep 0.1
    done
    echo "0 0 65536" > "/proc/$pid/uid_map" && echo "0 0 65536" > "/proc/$pid/gid_map" \
        || { kill "$pid" 2>/dev/null; rm -f "$fifo"; die "could not set up the build's user namespace (unshare)"; }
    echo go > "$fifo"
    # unshare ignores SIGINT and SIGTERM while it waits: an interrupted build ends the namespace's first process.
    trap 'pkill -KILL -P "$pid"; rm -f "$fifo"; die "interrupted"' INT TERM
    wait "$pid" || status=$?
    trap - INT TERM
    rm -f "$fifo"
    return "$status"
}
