# romlab: `make demo` and `make test` work from a fresh clone (they create .venv).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all venv demo test test-fast wheel-smoke walkthrough bench compat clean

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m emulator.host.demo

test: $(STAMP)
	$(PY) -m pytest -n 4

test-fast: $(STAMP)
	$(PY) -m pytest tests/unit

# the README walkthrough, run as written in a temporary folder (tests/e2e/test_readme.py)
walkthrough: $(STAMP)
	$(PY) -m pytest -m walkthrough tests/e2e/test_readme.py

# build the wheel, install it in a clean venv outside the repo, smoke-test it there
wheel-smoke: $(STAMP)
	bash .ci/wheel-smoke

bench: $(STAMP)
	$(PY) bench/emulator_throughput.py

# esptool 2.8 ... 5.6 against emu-rom (ESP32, ESP8266); each release is installed from PyPI
# once into .cache/compat/ (docs/fidelity.md §6). Not part of `make test` (about 6 minutes).
compat: $(STAMP)
	$(PY) -m tests.compat.matrix --markdown .cache/compat/matrix.md

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info dist
