# Set-up and everyday commands. Everything installs into .venv with pip (no uv/poetry: the torch
# wheels of the project machines lie on local disk where only pip looks).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sislab-installed
RUN_DIR ?= runs/quickstart-$(shell date +%Y%m%d-%H%M%S)

.PHONY: venv host-libs demo screenshots test test-fast lint format clean

# torch 2.14.1 for x86_64 is a CUDA build: the venv takes about 7 GB, so a disk with less free
# says so before pip runs out of space halfway.
$(STAMP): pyproject.toml requirements/constraints.txt
	@df -Pk . | awk 'NR == 2 && $$4 < 8 * 1024 * 1024 { printf "note: %.1f GB free on this disk; .venv needs about 7 GB (torch is a CUDA build)\n", $$4 / 1048576 }'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# tcmalloc, the allocator sislab preloads into the processes that train (sislab.host_allocator);
# installed with apt-get where this runs as root, else named. Optional: without it they use
# glibc's malloc.
host-libs:
	@ldconfig -p | grep -q libtcmalloc_minimal.so.4 \
	|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	     && { apt-get install -y -q libtcmalloc-minimal4 >/dev/null 2>&1 \
	          || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q libtcmalloc-minimal4 >/dev/null 2>&1; }; }; } \
	|| echo "note: tcmalloc not installed (apt-get install libtcmalloc-minimal4): training runs on glibc's malloc"

demo: $(STAMP) host-libs
	$(BIN)/sislab run examples/quickstart.yaml --run-dir $(RUN_DIR)

# The docs' MLflow UI screenshots and demo grid, from a finished run folder (needs the system's
# Chromium, e.g. apt-get install chromium; Playwright, the screenshots extra, drives it):
#   make screenshots RUN_DIR=runs/quickstart-YYYYmmdd-HHMMSS
screenshots: $(STAMP)
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e '.[screenshots]'
	$(BIN)/python tools/screenshots.py $(RUN_DIR) --out docs/images

# Two pytest-xdist workers: the Ray tests in one (tests/conftest.py groups them), the rest beside,
# in the order tests/conftest.py sorts them.
PYTEST := $(BIN)/python -m pytest -q -n 2 --dist loadscope --no-loadscope-reorder --durations=25

test: $(STAMP) host-libs
	$(PYTEST)

test-fast: $(STAMP) host-libs
	$(PYTEST) -m "not e2e and not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
