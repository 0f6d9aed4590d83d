# Two entry points for a fresh clone (see README.md):
#   make demo   - create .venv, build and install gingham, run `gingham demo`
#   make test   - same set-up, then run the test suite
# Everything lands in .venv/ and build/ inside the checkout; rerunning is incremental.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# torch comes first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: venv install lint demo test bench clean

$(VENV)/.ready:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q scikit-build-core pybind11 cmake ninja
	touch $@

venv: $(VENV)/.ready

# A real wheel build and install (no editable path tricks); build/<tag> keeps it incremental.
install: venv
	$(PIP) install -q --no-build-isolation ".[dev,text,server,client]"

demo: install
	$(VENV)/bin/gingham demo

# Lint and the layer map (docs/architecture.md) first: they take seconds and fail fast.
lint: install
	$(VENV)/bin/ruff check python tests bench
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q

bench: install
	$(PY) bench/maxsim.py

clean:
	rm -rf build $(VENV)
