# zhengyin — the two entry points every machine needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOME_DIR ?= .zhengyin

.PHONY: demo test install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	sh .ci/debian-packages runtime
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

## The main job on embedded defaults: a development trust domain, exported and checked.
demo: install
	$(BIN)/zhengyin demo --home $(HOME_DIR)

## The whole suite: SQLite always, and PostgreSQL (127.0.0.1:5432, database test) too.
test: install
	sh .ci/debian-packages test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

## LICENCE_RECORDS: how many records the bulk-conversion bench converts (the issue's figure: 100000).
LICENCE_RECORDS ?= 100000
bench: install
	$(BIN)/python -m bench.sm2_speed
	$(BIN)/python -m bench.pdf_speed
	$(BIN)/python -m bench.licence_speed --records $(LICENCE_RECORDS)

clean:
	rm -rf $(VENV) $(HOME_DIR) build *.egg-info .pytest_cache
