# watchnext: `make run` trains, evaluates and pushes a model; `make test` runs the suite.
# Both create .venv from Python 3.10 when it is missing and reinstall only when
# requirements/lock.txt or setup.py changed (the stamp file below).

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.watchnext-installed
UV_VERSION := 0.13.9
export TF_USE_LEGACY_KERAS := 1
# Byte-compile once into .venv and __pycache__: TFX imports take ~50 s per process otherwise.
unexport PYTHONDONTWRITEBYTECODE
export PYTHONWARNINGS ?= ignore::DeprecationWarning

RUN_ARGS ?=
PYTEST_ARGS ?=
# pytest-xdist workers for `make test` (tests/conftest.py groups what must share a worker).
TEST_WORKERS ?= 2

.PHONY: help venv run test test-fast lint bench clean

help:
	@echo "make run     # simulate logs, run the local TFX pipeline, push to ./watchnext_output/serving"
	@echo "make test    # the whole test suite on 2 pytest-xdist workers (13 to 16 minutes on 2 cores)"
	@echo "make test-fast  # skip tests marked slow (the end-to-end pipeline runs)"
	@echo "make lint    # ruff"
	@echo "make bench [BENCH=oracle]  # benchmarks, --quick sizes, into watchnext_output/bench/"

venv: $(STAMP)

$(PY):
	@py=$$(scripts/find_python.sh) || exit 1; \
	echo "creating $(VENV) with $$py"; \
	"$$py" -m venv $(VENV)

$(STAMP): requirements/lock.txt setup.py | $(PY)
	@echo "installing pinned dependencies into $(VENV) (a few minutes the first time)"
	$(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip install --python $(PY) --quiet -r requirements/lock.txt
	$(VENV)/bin/uv pip install --python $(PY) --quiet --no-deps -e .
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/watchnext run $(RUN_ARGS)

test: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=$${TF_CPP_MIN_LOG_LEVEL:-2} $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

test-fast: $(STAMP)
	TF_CPP_MIN_LOG_LEVEL=$${TF_CPP_MIN_LOG_LEVEL:-2} $(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

BENCH ?= all
bench: $(STAMP)
	$(PY) -m bench $(BENCH) --quick

clean:
	rm -rf watchnext_output .pytest_cache
