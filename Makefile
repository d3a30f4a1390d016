# Two commands matter: `make demo` and `make test`. Both set everything up first and are safe to rerun.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := libasound2-dev alsa-utils libsndfile1 tmux espeak-ng sox openssh-server postgresql \
  xterm xvfb xdotool
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck contracts pytest bench bench-quick bench-server chaos setup system-deps clean

setup: $(STAMP)

# Debian packages: ALSA headers (simpleaudio builds against them), tmux (end-to-end tests),
# xterm/xvfb/xdotool (the real command in xterm on a private X server, tests/tui/test_xterm.py),
# sshd (the SSH relay test), espeak-ng/sox (re-making demo clips), postgresql (the tests start
# throwaway servers from its binaries; no system cluster is used). Skipped when already present.
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(STAMP): pyproject.toml | system-deps
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,asr]'
	@touch $(STAMP)

demo: setup
	$(BIN)/annotator demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

contracts: setup
	$(BIN)/lint-imports

pytest: setup
	$(BIN)/pytest -n 2 --dist loadgroup

test: lint typecheck contracts pytest

# Every figure beside its floor measured in the same run (ratio and target per row, notes under
# the table, everything in bench/results.json). The server suite runs each configuration
# (SQLite/PostgreSQL x 1/2 workers) the installed `annotator serve` offers, on a temporary
# PostgreSQL cluster; one it cannot run is reported as "not run: <reason>".
bench: setup
	$(BIN)/python -m bench

# The same figures from smaller runs (one load round of 3 s per side, fewer clips and cycles).
bench-quick: setup
	$(BIN)/python -m bench --quick

bench-server: setup
	$(BIN)/python -m bench --only server

chaos: setup
	$(BIN)/python -m tests.chaos.run --minutes 3
	ANNOTATOR_MACHINE_EXAMPLES=40 $(BIN)/pytest -q -n 0 tests/workbench/test_workbench_machine.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
