# lakecast: the two commands a newcomer needs are `make demo` and `make test`.
# Both do the whole set-up first (idempotent; a second run takes seconds).

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JARS_STAMP := .cache/jars/.resolved
RUN_DATE ?= 2011-12-09

.PHONY: setup demo test test-fast clean-lake clean

setup: $(STAMP) $(JARS_STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip check
	touch $@

# Delta Lake's JVM jars, resolved once from Maven Central into .cache/jars.
$(JARS_STAMP): $(STAMP) jobs/common/jars.py
	$(BIN)/python -m jobs.common.jars
	touch $@

demo: setup
	$(BIN)/lakecast run --run-date $(RUN_DATE)

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

clean-lake:
	rm -rf lake

clean: clean-lake
	rm -rf $(VENV) .cache build *.egg-info
