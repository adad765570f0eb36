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

# `make run LAKE=data-lake`: the same app over a Parquet lake (docs/scaling.md).
ifdef LAKE
DATA := $(LAKE)
DEMO := lake demo
else
DEMO := demo
endif

run: $(VENV)/.installed
	$(PY) -m app $(DEMO) --if-empty --data-dir $(DATA)
	$(PY) -m app serve --address 127.0.0.1 --port $(PORT) --data-dir $(DATA)

test: $(VENV)/.installed
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check app tests bench
	$(VENV)/bin/ruff format --check app tests bench

demo: $(VENV)/.installed
	$(PY) -m app demo --data-dir $(DATA)

bench: $(VENV)/.installed
	$(PY) bench/ingest_bench.py
	$(PY) bench/timeline_bench.py
	$(PY) bench/review_bench.py
	$(PY) bench/investigate_bench.py

clean:
	rm -rf $(VENV) .pytest_cache
