# Developer entry points. Every target first makes sure .venv exists with the pinned requirements,
# so each command works on a fresh clone.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The ROS 2 Jazzy Python stack beside the repo (../shared/ros2); where it is absent, `make test` runs without ROS
# (the ROS tests skip, or fail under CI=true).
ROS2 ?= ../shared/ros2
ROS_STAMP := $(VENV)/.ros-installed
HAVE_ROS := $(wildcard $(ROS2)/make-venv.sh)
# a shell with ROS 2 and this package's colcon install sourced
ROS_ENV := source $(VENV)/ros2-env.sh && source install/setup.bash

.PHONY: setup demo test test-fast bench lint typecheck models clean ros

$(STAMP): requirements.txt requirements-dev.txt setup.py
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools wheel
	$(BIN)/pip install --quiet -r requirements-dev.txt
	$(BIN)/pip install --quiet --no-build-isolation --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# make-venv.sh installs the ROS wheels into the existing .venv and leaves the project's pins as they are (checked:
# `pip freeze` before and after differ only by added packages). colcon goes first: see requirements-ros.txt.
$(ROS_STAMP): $(STAMP) $(ROS2)/requirements.lock requirements-ros.txt
	$(BIN)/pip install --quiet -r requirements-ros.txt
	bash $(ROS2)/make-venv.sh $(VENV)
	touch $(ROS_STAMP)

## ROS 2 stage: the shared Jazzy stack in .venv, then `colcon build` of this package into build/ install/ log/
## (ament index, share/hstnn_ros, lib/hstnn_ros: what `ros2 launch` / `ros2 run` need). Rebuilt every time (~2 s).
ros: $(ROS_STAMP)
	source $(VENV)/ros2-env.sh && colcon build --paths . --packages-select hstnn_ros --event-handlers console_stderr-

## The main job: a small synthetic 3-environment route replayed through the shipped models.
demo: $(STAMP)
	$(BIN)/hstnn-demo

## The test suite (fast and slow tests; CI runs exactly this). With ../shared/ros2 beside the repo it first builds
## the ROS 2 stage and runs pytest in that environment, so the launch and live-graph tests run for real.
ifneq ($(HAVE_ROS),)
test: ros
	$(ROS_ENV) && $(BIN)/python -m pytest -q
else
test: $(STAMP)
	$(BIN)/python -m pytest -q
endif

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .

## mypy on the package (it ships py.typed); configuration and the list of not-yet-clean modules in pyproject.toml.
typecheck: $(STAMP)
	$(BIN)/mypy

## Re-train the shipped model bundles from scratch (documented in models/MODEL_CARD.md): hstnn-fit-route on the
## synthetic route (demo preset, 3 environments x 4 traversals, seed 0; generated once into build_models_work/).
MODELS_WORK := build_models_work
models: $(STAMP)
	test -f $(MODELS_WORK)/route/index.json || $(BIN)/hstnn-synth-route --out $(MODELS_WORK)/route --preset demo \
		--envs env1,env2,env3 --traversals 4 --seed 0 --quiet
	$(BIN)/hstnn-fit-route --route $(MODELS_WORK)/route --out models --work $(MODELS_WORK)/fit --quick \
		--frontend-epochs 20 --hidden 500 500 --ratios 0.5 0.75 0.95

clean:
	rm -rf $(VENV) build install log *.egg-info .pytest_cache .ruff_cache .mypy_cache
