# beanstalkm tasks. `make test` and `make demo` set up everything they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: all venv beanstalkd tmux generate check lint typecheck drift unit test test-pythons demo bench clean

all: test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# beanstalkd itself: installed with apt-get when missing (root, Debian/Ubuntu).
beanstalkd:
	@if command -v beanstalkd >/dev/null 2>&1 || [ -x /usr/sbin/beanstalkd ] || [ -n "$$BEANSTALKD" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "installing beanstalkd (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq beanstalkd >/dev/null \
		|| { echo "ERROR: could not install beanstalkd with apt-get; install it and re-run" >&2; exit 1; }; \
	else echo "ERROR: beanstalkd is not installed and apt-get is unavailable; install beanstalkd (or set BEANSTALKD=/path) and re-run" >&2; exit 1; fi

# Test tools: tmux (the test that runs `beanstalkm top` in a real terminal) and openssl (the TLS test's
# self-signed certificate), installed the same way as beanstalkd.
tmux:
	@missing=""; for tool in tmux openssl; do command -v $$tool >/dev/null 2>&1 || missing="$$missing $$tool"; done; \
	if [ -z "$$missing" ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
		echo "installing$$missing (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
		|| { echo "ERROR: could not install$$missing with apt-get; install it and re-run" >&2; exit 1; }; \
	else echo "ERROR:$$missing not installed and apt-get is unavailable; install it and re-run" >&2; exit 1; fi

generate: venv
	$(PY) -m codegen

drift: venv
	$(PY) -m codegen --check

lint: venv
	$(PY) -m ruff format --check src codegen tests benchmarks examples docs/conftest.py
	$(PY) -m ruff check src codegen tests benchmarks examples docs/conftest.py

typecheck: venv
	$(PY) -m mypy

# Fast gates: format, lint, mypy --strict, drift, unit tests that need no server.
check: lint typecheck drift
	$(PY) -m pytest -q -m 'not slow' tests/unit

# Everything, including integration tests against real beanstalkd servers the tests start.
test: venv beanstalkd tmux lint typecheck drift
	$(PY) -m pytest -q --doctest-glob='*.md' tests docs/tutorial.md

# The other Pythons the package supports (requires-python >= 3.11): each one found gets its own virtualenv
# (.venv-3.N) and runs the whole suite. Not part of `make test` (it takes as long again per Python); a Python
# not found is named, not tested. `make test-pythons PYTHONS="python3.12"` for one, or a path to it.
PYTHONS ?= python3.12 python3.13
test-pythons: beanstalkd tmux
	@for py in $(PYTHONS); do \
		if ! $$py -c 'import sys' >/dev/null 2>&1; then \
			echo "$$py: not found (or, under pyenv, not selected: pyenv global 3.11 3.12 3.13), not tested"; continue; fi; \
		env=.venv-$$($$py -c 'import sys; print("%d.%d" % sys.version_info[:2])'); \
		[ -x $$env/bin/python ] || $$py -m venv $$env || exit 1; \
		$$env/bin/python -m pip install -q -e '.[dev]' || exit 1; \
		echo "== $$($$env/bin/python --version)"; \
		$$env/bin/python -m pytest -q -p no:cacheprovider --doctest-glob='*.md' tests docs/tutorial.md || exit 1; \
	done

demo: venv beanstalkd
	$(PY) examples/demo.py
	$(PY) examples/cluster_demo.py

bench: venv beanstalkd
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .venv-3.* build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
