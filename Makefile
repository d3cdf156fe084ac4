# One-command set-up: every target creates the virtualenv and installs on demand.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo dev test lint docs bench clean all

all: lint test

$(STAMP): pyproject.toml devgateway/pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ./devgateway -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/wandstore-agents demo

# The Procfile's processes together (honcho; .env is read). The processes find uvicorn and
# dramatiq on PATH; with no gateway configured each worker embeds a dev gateway (offline).
dev: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start

# The docs build is part of the tests: a broken link fails. (Not --quiet: with it, mkdocs
# drops the warnings that --strict counts, and a broken link passes.)
test: $(STAMP)
	$(BIN)/python -m pytest
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir var/site

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir var/site

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache
