# jupyter_mlops: `make lab` opens JupyterLab on examples/; `make test` runs every test.
# Everything installs into .venv from this repo's own files (Python 3.11+, Node 20).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q
STAMP  := $(VENV)/.installed

.PHONY: install interop lab test lint unit tsunit demo bench clean

# The labextension is built by the package's build hook (npm), so its sources are inputs too.
LABEXT_SOURCES := labextension/package.json labextension/package-lock.json $(wildcard labextension/src/*.ts) labextension/style/index.css

$(STAMP): pyproject.toml $(LABEXT_SOURCES)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -U pip 2>&1 | grep -v "is ignored" || true
	$(PIP) install -e '.[dev]' 2>&1 | grep -v "is ignored" || true
	$(BIN)/python -c 'import jupyter_mlops, sklearn, nbclient'
	touch $(STAMP)

install: $(STAMP)

ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root,)

lab: install
	$(BIN)/jupyter lab --notebook-dir=examples $(ROOT_ARGS) $(LAB_ARGS)

lint: install
	$(BIN)/ruff check jupyter_mlops tests bench examples
	$(BIN)/ruff format --check jupyter_mlops tests bench examples

# Browser tests drive Debian's chromium (test tools cannot download browsers here).
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null

# MLflow in a venv of its own (never a dependency of the package): the export tests load the
# exported MLflow models with it, on the same scikit-learn, pandas, numpy and scipy as .venv,
# and on the same versions of the frameworks (XGBoost, LightGBM) and skops that .venv has.
INTEROP       := .interop-venv
INTEROP_STAMP := $(INTEROP)/.installed
INTEROP_PIP   := $(INTEROP)/bin/python -m pip --disable-pip-version-check -q
MLFLOW_SKINNY := mlflow-skinny==3.17.2
INTEROP_PINS  := scikit-learn pandas numpy scipy xgboost-cpu lightgbm skops
# "name==version" for each of INTEROP_PINS installed in .venv
PINNED_IN_VENV = $$($(BIN)/python -c 'import sys, importlib.metadata as m; have = {d.metadata["Name"].lower().replace("_", "-"): d.version for d in m.distributions()}; print(" ".join(f"{n}=={have[n]}" for n in sys.argv[1:] if n in have))' $(INTEROP_PINS))

$(INTEROP_STAMP): $(STAMP) Makefile
	test -x $(INTEROP)/bin/python || $(BIN)/python -m venv $(INTEROP)
	$(INTEROP_PIP) install -U pip 2>&1 | grep -v "is ignored" || true
	$(INTEROP_PIP) install '$(MLFLOW_SKINNY)' $(PINNED_IN_VENV) 2>&1 | grep -v "is ignored" || true
	$(INTEROP)/bin/python -c 'import mlflow.pyfunc, mlflow.sklearn, sklearn, pandas'
	touch $(INTEROP_STAMP)

interop: $(INTEROP_STAMP)

unit: install $(CHROMIUM) $(INTEROP_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The sidebar's TypeScript unit tests (vitest); node_modules comes from the install.
tsunit: install
	cd labextension && npm test

test: lint tsunit unit

demo: install
	$(BIN)/python examples/demo.py examples/quickstart.ipynb

# Own venv with MLflow (the anchor tool), never in the package's deps; BENCH_ARGS=--quick for a smoke run.
EVIDENTLY_VENV := .bench-evidently-venv
EVIDENTLY_PKGS := 'evidently>=0.7,<0.8' 'pandas<3' pyarrow

bench:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x .bench-venv/bin/python || $(PYTHON) -m venv .bench-venv
	@if [ ! .bench-venv/.installed -nt pyproject.toml ] || ! .bench-venv/bin/python -c 'import dvc' 2>/dev/null; then \
	  .bench-venv/bin/python -m pip --disable-pip-version-check -q install -U pip 2>&1 | grep -v "is ignored"; \
	  .bench-venv/bin/python -m pip --disable-pip-version-check -q install 'mlflow>=3,<4' 'dvc>=3.60,<4' 'playwright>=1.45' -e . 2>&1 | grep -v "is ignored"; \
	  .bench-venv/bin/python -c 'import mlflow, dvc, jupyter_mlops, sklearn, IPython' && touch .bench-venv/.installed; \
	fi
	@# Evidently (bench_monitoring.py's anchor) needs pandas < 3: a venv of its own, without this package.
	test -x $(EVIDENTLY_VENV)/bin/python || $(PYTHON) -m venv $(EVIDENTLY_VENV)
	@if [ ! $(EVIDENTLY_VENV)/.installed -nt Makefile ] || ! $(EVIDENTLY_VENV)/bin/python -c 'import evidently' 2>/dev/null; then \
	  $(EVIDENTLY_VENV)/bin/python -m pip --disable-pip-version-check -q install -U pip 2>&1 | grep -v "is ignored"; \
	  $(EVIDENTLY_VENV)/bin/python -m pip --disable-pip-version-check -q install $(EVIDENTLY_PKGS) 2>&1 | grep -v "is ignored"; \
	  $(EVIDENTLY_VENV)/bin/python -c 'import evidently.presets, pandas, pyarrow' && touch $(EVIDENTLY_VENV)/.installed; \
	fi
	.bench-venv/bin/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .bench-venv $(EVIDENTLY_VENV) $(INTEROP) .pytest_cache .ruff_cache
