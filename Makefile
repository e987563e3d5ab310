# GlanceSync developer and user entry points.
#   make demo   set up and run a synchronisation of the embedded demo federation
#   make test   set up and run every test (unit + integration on the test bed)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup demo test unit integration docs bench testbed-start testbed-stop clean

$(STAMP): requirements.txt test-requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r test-requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(PY) -m glancesync.demo

# The docs are built first so that pytest's summary closes the output.
test: setup docs
	$(PY) -m glancesync.testbed install
	$(PY) -m pytest tests

unit: setup
	$(PY) -m pytest tests/unit

integration: setup
	$(PY) -m pytest tests/integration

docs: setup
	$(PY) -m sphinx -W -q -b html docs docs/_build/html

bench: setup
	$(PY) -m glancesync.testbed install
	$(PY) bench/run.py

testbed-start: setup
	$(PY) -m glancesync.testbed start

testbed-stop: setup
	$(PY) -m glancesync.testbed stop

clean:
	rm -rf $(VENV) .testbed .demo docs/_build
