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

## Re-train the shipped model bundles from scratch (documented in models/MODEL_CARD.md): hstnn-fit-route on the
## synthetic route (demo preset, 3 environments x 4 traversals, seed 0; generated once into build_models_work/).
MODELS_WORK := build_models_work
models: $(STAMP)
	test -f $(MODELS_WORK)/route/index.json || $(BIN)/hstnn-synth-route --out $(MODELS_WORK)/route --preset demo \
		--envs env1,env2,env3 --traversals 4 --seed 0 --quiet
	$(BIN)/hstnn-fit-route --route $(MODELS_WORK)/route --out models --work $(MODELS_WORK)/fit --quick \
		--hidden 500 500 --ratios 0.5 0.75 0.95

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
