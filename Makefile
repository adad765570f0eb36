# The two commands: `make run` and `make test`. Everything else is a detail.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
DATA ?= data

.PHONY: run test lint bench demo clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(PY) -m app demo --if-empty --data-dir $(DATA)
	$(PY) -m app serve --address 127.0.0.1 --port $(PORT) --data-dir $(DATA)

test: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check app tests bench

demo: $(VENV)/.installed
	$(PY) -m app demo --data-dir $(DATA)

bench: $(VENV)/.installed
	$(PY) bench/ingest_bench.py
	$(PY) bench/timeline_bench.py

clean:
	rm -rf $(VENV) .pytest_cache
