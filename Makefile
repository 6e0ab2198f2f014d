# The two commands a user needs: `make run` and `make test`. Both create or refresh .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_VENV := .bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: help run test bench lint clean edge-check edge-deploy

help:
	@echo "make run [PORT=8080]   the demo: the box on a virtual printer with a sealed sample, web app on PORT"
	@echo "make test              the test suite (installs chromium and mosquitto when missing)"
	@echo "make bench             the benchmarks, printed as tables"
	@echo "make lint              ruff check and format check"
	@echo "make edge-check        the edge firmware: type checks, mpy-cross, tests on MicroPython"
	@echo "make edge-deploy PORT=/dev/ttyACM0   the edge firmware onto a MicroPython board"
	@echo "make image             the SD-card image (as root); make image-test boots it under QEMU"
	@echo "make clean             remove the virtualenvs, node_modules and build output"

# Debian's own Python keeps venv in a separate package; install it when it is missing.
define make_venv
	@test -x $(1)/bin/python || $(PYTHON) -m venv $(1) || { rm -rf $(1) && \
		apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(1); }
endef

$(STAMP): pyproject.toml constraints.txt
	$(call make_venv,$(VENV))
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,bench,chain]'
	@touch $(STAMP)

# The printer-side peer of the benchmark: Printrun's printcore, without its GUI dependencies.
$(BENCH_STAMP): constraints-bench.txt
	$(call make_venv,$(BENCH_VENV))
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r constraints-bench.txt
	@touch $(BENCH_STAMP)

# The chain's npm side (solc, OpenZeppelin, anvil), pinned by package-lock.json.
NPM_STAMP := node_modules/.installed
$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(NPM_STAMP)

# The demo's fleet broker is Debian's mosquitto, on a loopback port. The web app's port: make run PORT=8081.
run: $(STAMP)
	@command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto; }
	$(BIN)/mipai-box --data-dir .demo-box demo --http-port $(or $(PORT),8080)

# The browser tests drive Debian's chromium (Playwright cannot download browsers here); the fleet tests start a
# real Mosquitto on loopback. The suite mostly waits (printers, brokers, daemons, a browser), so it runs in more
# workers than a 2-core machine has cores; whole files go to one worker, so a module's broker, anvil or browser
# starts once. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 4
test: $(STAMP) $(NPM_STAMP) edge-check
	@command -v chromium >/dev/null && { command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto; } || \
		{ apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium mosquitto; }
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP) $(BENCH_STAMP) $(NPM_STAMP)
	$(BIN)/python bench/stream_bench.py --peer-python $(BENCH_VENV)/bin/python $(BENCH_ARGS)
	$(BIN)/python bench/sealed_bench.py $(SEALED_BENCH_ARGS)
	$(BIN)/python bench/daemon_bench.py
	$(BIN)/python bench/fleet_bench.py
	$(BIN)/python bench/chain_bench.py
	$(BIN)/python bench/verify_bench.py
	$(BIN)/python bench/settle_bench.py
	$(BIN)/python bench/edge_bench.py
	$(BIN)/python bench/attest_bench.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(BENCH_VENV) node_modules bench/out .pytest_cache .ruff_cache .hypothesis $(EDGE_TOOLS) build/edge \
		tools/edge-check/node_modules

# ---- The edge firmware (docs/edge-firmware.md) -------------------------------------------------------------
# Type checks against the boards' stubs (pip --target, used as pyright's typeshedPath: CPython's standard library
# would shadow them), every firmware file compiled by mpy-cross for the RP2040's Cortex-M0+, and the firmware's
# tests run on those compiled files by the MicroPython unix port with a Pico's heap.
EDGE_TOOLS := .edge-tools
EDGE_STAMP := $(EDGE_TOOLS)/.installed
EDGE_BUILD := build/edge
EDGE_SOURCES := firmware_bridge/__init__.py firmware_bridge/errors.py firmware_bridge/gcode.py firmware_bridge/replies.py firmware_bridge/marlin.py \
	$(wildcard firmware_bridge/edge/*.py)
EDGE_HEAP := 160K

$(EDGE_STAMP): $(STAMP) pyproject.toml constraints.txt tools/edge-check/package-lock.json
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,bench,chain,edge]'
	rm -rf $(EDGE_TOOLS)/rp2 $(EDGE_TOOLS)/esp32
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -c constraints.txt \
		--target $(EDGE_TOOLS)/rp2 micropython-rp2-rpi-pico-w-stubs micropython-stdlib-stubs
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -c constraints.txt \
		--target $(EDGE_TOOLS)/esp32 micropython-esp32-stubs micropython-stdlib-stubs
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; }
	cd tools/edge-check && npm ci --no-audit --no-fund --silent
	@touch $(EDGE_STAMP)

edge-check: $(EDGE_STAMP)
	tools/edge-check/node_modules/.bin/pyright -p tools/edge-check/pyright-rp2.json
	tools/edge-check/node_modules/.bin/pyright -p tools/edge-check/pyright-esp32.json
	rm -rf $(EDGE_BUILD)
	@for source in $(EDGE_SOURCES); do mkdir -p $(EDGE_BUILD)/$$(dirname $$source) && \
		$(BIN)/mpy-cross -march=armv6m -o $(EDGE_BUILD)/$${source%.py}.mpy $$source || exit 1; done
	@echo "mpy-cross -march=armv6m: $$(find $(EDGE_BUILD) -name '*.mpy' | wc -l) files, $$(cat $$(find $(EDGE_BUILD) -name '*.mpy') | wc -c) bytes"
	cd $(EDGE_BUILD) && MICROPYPATH=.frozen:$(CURDIR) $(CURDIR)/$(BIN)/micropython -X heapsize=$(EDGE_HEAP) \
		$(CURDIR)/tests/micropython_runner.py tests.edge.test_edge_bridge tests.edge.mp_vectors
	cd $(EDGE_BUILD) && MICROPYPATH=.frozen:$(CURDIR) $(CURDIR)/$(BIN)/micropython -X heapsize=$(EDGE_HEAP) \
		$(CURDIR)/tests/micropython_runner.py tests.edge.mp_asyncio

# make edge-deploy PORT=/dev/ttyACM0: the compiled firmware and main.py onto a board with MicroPython.
edge-deploy: edge-check
	@test -n "$(PORT)" || { echo "usage: make edge-deploy PORT=/dev/ttyACM0" >&2; exit 2; }
	rm -f $(EDGE_BUILD)/firmware_bridge/edge/main.mpy
	$(BIN)/mpremote connect $(PORT) cp -r $(EDGE_BUILD)/firmware_bridge : + cp firmware_bridge/edge/main.py :main.py + reset


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
