# romlab: `make demo` and `make test` work from a fresh clone (they create .venv).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all venv demo test test-fast wheel-smoke walkthrough bench compat compat-js esptool-suite chips clean

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

# every new chip (ESP32-C3/S3/C6) x stub/ROM against the real esptool (tests/e2e/test_new_chips.py)
chips: $(STAMP)
	$(PY) -m pytest -n 2 -m 'e2e' tests/e2e/test_new_chips.py tests/e2e/test_new_chips_flasher.py

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
# ... then esptool-js (compat-js below) where node and npm are installed.
compat: $(STAMP)
	$(PY) -m tests.compat.matrix --markdown .cache/compat/matrix.md
	@if command -v node >/dev/null && command -v $(NPM) >/dev/null; then \
	  $(MAKE) --no-print-directory compat-js; \
	else echo "make compat: esptool-js part skipped (node/npm not installed)"; fi

# Other clients against emu-rom (docs/compat.md). Downloads go to a cache, never the tree.
COMPAT_CACHE   ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/romlab
ESPTOOL_JS_DIR := $(COMPAT_CACHE)/esptool-js
ESPTOOL_JS_LOCK := tests/compat/esptool_js/package-lock.json
NPM            ?= npm
ESPTOOL_GIT    ?=

$(ESPTOOL_JS_DIR)/.installed: $(ESPTOOL_JS_LOCK) tests/compat/esptool_js/package.json
	@command -v node >/dev/null && command -v $(NPM) >/dev/null || \
	  { echo "make compat-js: error: node and npm are needed (Node.js 18 or later)" >&2; exit 2; }
	mkdir -p $(ESPTOOL_JS_DIR)
	cp tests/compat/esptool_js/package.json $(ESPTOOL_JS_LOCK) $(ESPTOOL_JS_DIR)/
	cd $(ESPTOOL_JS_DIR) && $(NPM) ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# esptool-js (npm, pinned in tests/compat/esptool_js/package.json) through a Web Serial shim
compat-js: $(STAMP) $(ESPTOOL_JS_DIR)/.installed
	ESPTOOL_JS_NODE_MODULES=$(ESPTOOL_JS_DIR)/node_modules \
	  $(PY) -m pytest -p no:cacheprovider tests/compat/test_esptool_js.py -v

# esptool's own integration suite (test/test_esptool.py) against emu-rom; prints counts.
# 5.x sdists carry no test/: ESPTOOL_GIT=<clone or git dir of espressif/esptool>.
esptool-suite: $(STAMP)
	$(PY) tests/compat/esptool_suite.py --cache $(COMPAT_CACHE)/esptool-suite \
	  $(if $(ESPTOOL_GIT),--git $(ESPTOOL_GIT))

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info dist
