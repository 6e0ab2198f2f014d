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

# The demo's fleet broker is Debian's mosquitto, on a loopback port.
run: $(STAMP)
	@command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto; }
	$(BIN)/mipai-box demo --data-dir .demo-box

# The browser tests drive Debian's chromium (Playwright cannot download browsers here); the fleet tests start a
# real Mosquitto on loopback.
test: $(STAMP) $(NPM_STAMP)
	@command -v chromium >/dev/null && { command -v mosquitto >/dev/null || test -x /usr/sbin/mosquitto; } || \
		{ apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium mosquitto; }
	$(BIN)/python -m pytest

bench: $(STAMP) $(BENCH_STAMP) $(NPM_STAMP)
	$(BIN)/python bench/stream_bench.py --peer-python $(BENCH_VENV)/bin/python $(BENCH_ARGS)
	$(BIN)/python bench/sealed_bench.py $(SEALED_BENCH_ARGS)
	$(BIN)/python bench/daemon_bench.py
	$(BIN)/python bench/fleet_bench.py
	$(BIN)/python bench/chain_bench.py
	$(BIN)/python bench/verify_bench.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(BENCH_VENV) node_modules bench/out .pytest_cache .ruff_cache .hypothesis
