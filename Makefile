# The two commands a user needs: `make run` and `make test`. Both create or refresh .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_VENV := .bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: run test bench lint clean

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,bench]'
	@touch $(STAMP)

# The printer-side peer of the benchmark: Printrun's printcore, without its GUI dependencies.
$(BENCH_STAMP): constraints-bench.txt
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r constraints-bench.txt
	@touch $(BENCH_STAMP)

run: $(STAMP)
	$(BIN)/mipai-box stream --virtual-printer

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python bench/stream_bench.py --peer-python $(BENCH_VENV)/bin/python $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) $(BENCH_VENV) bench/out .pytest_cache .ruff_cache .hypothesis
