# Developer entry points. Every target first makes sure .venv exists with the pinned requirements,
# so each command works on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast bench lint models clean

$(STAMP): requirements.txt requirements-dev.txt setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-build-isolation --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

## The main job: a small synthetic 3-environment route replayed through the shipped models.
demo: $(STAMP)
	$(BIN)/hstnn-demo

## The test suite (fast and slow tests; CI runs exactly this).
test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .

## Re-train the shipped model bundles from scratch (documented in models/MODEL_CARD.md).
models: $(STAMP)
	$(BIN)/python -m hstnn_ros.data_tools.build_models --quick --traversals 4 --hidden 500 500 --ratios 0.5 0.75 0.95

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
