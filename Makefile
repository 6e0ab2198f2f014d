# The two commands a user needs: `make run` and `make test`. Both create or refresh .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_VENV := .bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: run test bench lint clean

# Debian's own Python keeps venv in a separate package; install it when it is missing.
define make_venv
	@test -x $(1)/bin/python || $(PYTHON) -m venv $(1) || { rm -rf $(1) && \
		apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(1); }
endef

$(STAMP): pyproject.toml constraints.txt
	$(call make_venv,$(VENV))
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,bench]'
	@touch $(STAMP)

# The printer-side peer of the benchmark: Printrun's printcore, without its GUI dependencies.
$(BENCH_STAMP): constraints-bench.txt
	$(call make_venv,$(BENCH_VENV))
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r constraints-bench.txt
	@touch $(BENCH_STAMP)

# The demo's fleet broker is Debian's mosquitto, on a loopback port.
run: $(STAMP)
	@command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto; }
	$(BIN)/mipai-box demo --data-dir .demo-box

# The browser tests drive Debian's chromium (Playwright cannot download browsers here); the fleet tests start a
# real Mosquitto on loopback.
test: $(STAMP)
	@command -v chromium >/dev/null && { command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto; } || \
		{ apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium mosquitto; }
	$(BIN)/python -m pytest

bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python bench/stream_bench.py --peer-python $(BENCH_VENV)/bin/python $(BENCH_ARGS)
	$(BIN)/python bench/sealed_bench.py $(SEALED_BENCH_ARGS)
	$(BIN)/python bench/daemon_bench.py
	$(BIN)/python bench/fleet_bench.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(BENCH_VENV) bench/out .pytest_cache .ruff_cache .hypothesis

# --- The SD-card image (image/; as root): Debian bookworm arm64 with the box, and its boot test under QEMU. -----
IMAGE_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE_FILE := dist/mipai-box-$(IMAGE_VERSION)-arm64.img.zst
IMAGE_SOURCES := $(shell find image box fleet secure_print chain_client provisioning firmware_bridge console wire \
	-type f -not -name '*.pyc' 2>/dev/null) pyproject.toml constraints.txt

.PHONY: image image-test image-clean
image: $(IMAGE_FILE)

$(IMAGE_FILE): $(IMAGE_SOURCES)
	bash image/build.sh

# Boots the image in qemu-system-aarch64 -M virt, sets it up in Chromium and prints through its serial port.
image-test: $(STAMP) $(IMAGE_FILE)
	@command -v qemu-system-aarch64 >/dev/null && command -v mcopy >/dev/null && command -v chromium >/dev/null || \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		qemu-system-arm mtools zstd chromium openssh-client; }
	MIPAI_IMAGE_TEST=1 $(BIN)/python -m pytest -x -q -s -p no:cacheprovider tests/image

# The image's caches (downloaded packages, the configured base system) and outputs.
image-clean:
	rm -rf build/image dist
