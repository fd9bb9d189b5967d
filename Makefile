# legalsearch: every target uses the project's own virtual environment in .venv (made by `make install`).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MODELS_DIR ?= models
CONFIG ?= $(if $(CORPUS),configs/default.toml,configs/demo.toml)
CORPUS ?=
EXTRA_TEXT ?=
FEEDBACK ?=
FEEDBACK_SPLIT ?= all
SHARED ?= $(or $(LEGALSEARCH_SHARED),../shared)
HOST ?= 127.0.0.1
PORT ?= 8000
# one uvicorn worker per core: each answers one request at a time (handlers are CPU-bound, see api/deps.py)
WORKERS ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: help install install-scale browser run train serve test test-notebooks lint eval bench notebooks clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

install: $(VENV)/.installed ## create .venv with the package, its tools and notebook support

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,notebooks]'
	touch $@

install-scale: install $(VENV)/.installed-scale ## add the scale extra (Ray Data and Ray Serve: train|serve --ray, docs/scale.md)

$(VENV)/.installed-scale: pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[scale]'
	touch $@

browser: ## install Debian's chromium and chromium-driver for the search page test (apt-get, as root); nothing if present
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "chromium and chromedriver are installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver; \
	else \
		echo "install chromium and chromium-driver (as root: make browser); the browser test skips without them" >&2; \
	fi

run: install ## the main job: train on the demo corpus when no model exists, then serve the API
	$(BIN)/legalsearch serve --train-if-missing --models-dir $(MODELS_DIR) --host $(HOST) --port $(PORT) --workers $(WORKERS)

train: install ## train a model (CORPUS=, EXTRA_TEXT=, FEEDBACK=, FEEDBACK_SPLIT=, CONFIG=, MODELS_DIR=); the demo corpus and configs/demo.toml by default
	$(BIN)/legalsearch train --config $(CONFIG) --models-dir $(MODELS_DIR) \
		$(foreach c,$(CORPUS),--corpus $(c)) $(foreach e,$(EXTRA_TEXT),--extra-text $(e)) \
		$(foreach f,$(FEEDBACK),--feedback $(f)) $(if $(FEEDBACK),--feedback-split $(FEEDBACK_SPLIT))

serve: install ## serve the API from models/current
	$(BIN)/legalsearch serve --models-dir $(MODELS_DIR) --host $(HOST) --port $(PORT) --workers $(WORKERS)

test: install browser ## run the whole test suite (unit, API, integration, notebooks)
	$(BIN)/python -m pytest
	$(MAKE) test-notebooks

test-notebooks: install ## execute every notebook against the demo model
	$(BIN)/jupytext --quiet --to ipynb $(wildcard notebooks/[0-9][0-9]_*.py)
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		$(BIN)/legalsearch train --config configs/demo.toml --models-dir "$$tmp/models" >/dev/null && \
		LEGALSEARCH_MODEL="$$tmp/models" $(BIN)/python -m pytest --nbmake -p no:cacheprovider \
			--override-ini="testpaths=" --override-ini="addopts=" notebooks/[0-9][0-9]_*.ipynb

lint: install ## ruff and mypy
	$(BIN)/ruff check src tests bench notebooks
	$(BIN)/mypy

eval: install ## evaluate the current model on the shared GerLayQA questions (BGB and all sections)
	$(BIN)/legalsearch eval --queries $(SHARED)/eval/gerlayqa-dev.jsonl --models-dir $(MODELS_DIR) --filter law=BGB --output bench/results/eval-bgb.json
	$(BIN)/legalsearch eval --queries $(SHARED)/eval/gerlayqa-dev.jsonl --models-dir $(MODELS_DIR) --output bench/results/eval-all.json

bench: install ## run the benchmarks; writes bench/results/<date>-<sha>.json and .md
	$(BIN)/python -m bench.run --models-dir $(MODELS_DIR) --shared $(SHARED) $(BENCH_ARGS)

notebooks: install ## start JupyterLab on notebooks/
	$(BIN)/jupyter lab --notebook-dir notebooks

clean: ## remove caches (not models)
	rm -rf .pytest_cache .mypy_cache .ruff_cache cache
