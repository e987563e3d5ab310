# GlanceSync developer and user entry points.
#   make demo   set up and run a synchronisation of the embedded demo federation
#   make test   set up and run every test (unit + integration on the test bed)
#   make mutation  mutation testing of the core modules (slow; MODULES="condition lock")
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup qemu-img bed-services demo test unit integration docs bench mutation testbed-start testbed-stop clean

$(STAMP): requirements.txt test-requirements.txt setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt -r test-requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# qemu-img converts disk formats (a system package, not on PyPI). Installed
# here when missing, which needs root and apt-get (Debian, Ubuntu: package
# qemu-utils, about 10 s); anyone else is told what to install.
qemu-img:
	@command -v qemu-img >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	    echo "qemu-img is missing: install it as root (Debian, Ubuntu: apt-get install qemu-utils; Fedora: dnf install qemu-img), then run make again" >&2; \
	    exit 2; \
	  fi; \
	  echo "installing qemu-img: apt-get install qemu-utils"; \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    -o DPkg::Lock::Timeout=300 qemu-utils >/dev/null && \
	  command -v qemu-img >/dev/null; }

# RabbitMQ and etcd of the test bed (system packages, not on PyPI): Debian's
# rabbitmq-server (with Erlang's epmd) and etcd-server, installed here when
# missing as qemu-img is (root and apt-get; about 30 s); anyone else is told
# what to install. The bed runs its own broker and member on free loopback
# ports: a system service the package may start (on systemd) is not used.
RABBITMQ_SERVER := /usr/lib/rabbitmq/bin/rabbitmq-server
bed-services:
	@missing=""; \
	[ -x $(RABBITMQ_SERVER) ] || missing="$$missing rabbitmq-server"; \
	command -v etcd >/dev/null 2>&1 || missing="$$missing etcd-server"; \
	[ -z "$$missing" ] || { \
	  if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	    echo "the test bed needs RabbitMQ and etcd: install as root (Debian, Ubuntu: apt-get install$$missing; Fedora: dnf install rabbitmq-server etcd), then run make again" >&2; \
	    exit 2; \
	  fi; \
	  echo "installing the test bed's services: apt-get install$$missing"; \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    -o DPkg::Lock::Timeout=300 $$missing >/dev/null && \
	  [ -x $(RABBITMQ_SERVER) ] && command -v etcd >/dev/null; }

demo: setup
	$(PY) -m glancesync.demo

# The docs are built first so that pytest's summary closes the output.
test: setup qemu-img bed-services docs
	$(PY) -m glancesync.testbed install
	$(PY) -m pytest tests

unit: setup
	$(PY) -m pytest tests/unit

integration: setup qemu-img bed-services
	$(PY) -m pytest tests/integration

docs: setup
	$(PY) -m sphinx -W -q -b html docs docs/_build/html

# Mutation testing of the core modules (slow: not part of test). MODULES="condition lock"
# for some of them; the report goes to build/mutation/report.md (docs/manual/testing.rst).
mutation: setup
	$(PY) -m pip install -q -r mutation-requirements.txt
	$(PY) -m tests.mutation $(MODULES)

bench: setup qemu-img bed-services
	$(PY) -m glancesync.testbed install
	$(PY) bench/run.py

testbed-start: setup bed-services
	$(PY) -m glancesync.testbed start

testbed-stop: setup
	$(PY) -m glancesync.testbed stop

clean:
	rm -rf $(VENV) .testbed .demo docs/_build
