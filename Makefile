# rcp: `make test` and `make demo` work on a fresh Debian 12 machine.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
BUILD := build/cpp
JOBS  ?= $(shell nproc)
STAMP := third_party/prefix/.ngtcp2

.PHONY: all bootstrap build cpp python wheel test cpp-test py-test lint lint-py lint-layers lint-cpp lint-format lint-tidy \
	fuzz fuzz-smoke demo bench bench-million bench-wan clean

all: build

bootstrap:
	bash scripts/bootstrap.sh

$(BUILD)/CMakeCache.txt: CMakeLists.txt | bootstrap
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRCP_BUILD_TESTS=ON >/dev/null

cpp: bootstrap $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

# The wheel (dist/) holds _core, rcpd and the package, needing nothing beyond glibc;
# `make python` installs that same wheel into .venv. build/py keeps the CMake build.
PIP := $(PY) -m pip --disable-pip-version-check
wheel: bootstrap
	rm -f dist/rcp-*.whl
	$(PIP) wheel --no-build-isolation --no-deps -q --config-settings=build-dir=build/py -w dist .

python: wheel
	$(PIP) install --no-index --no-deps --force-reinstall -q dist/rcp-*.whl

build: cpp python

cpp-test: cpp
	ctest --test-dir $(BUILD) --output-on-failure --timeout 300 -j$(JOBS)

py-test: python  # which builds the wheel that tests/test_wheel.py installs
	$(PY) -m pytest -v --durations=10 tests

# House rules: Python style and types (and the _core stub against the built module),
# layer directions of #include, C++ format and clang-tidy. `make -k lint` runs them all
# whatever fails first.
CPP_FILES  = $(shell find cpp bench fuzz -name '*.h' -o -name '*.cpp' | sort)
TIDY_FILES = $(filter %.cpp,$(CPP_FILES))
# The bindings (built only in build/py) and fuzz targets are not in $(BUILD)'s
# compile_commands.json: clang-tidy borrows a neighbour's flags, plus Python's headers.
PY_INCLUDE = $(shell /usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])')

lint: lint-py lint-layers lint-cpp

lint-py: python
	$(PY) -m flake8 python/rcp tests bench scripts fuzz
	$(PY) -m mypy
	$(PY) -m mypy.stubtest rcp._core --mypy-config-file pyproject.toml --allowlist scripts/stubtest_allowlist.txt
	$(PY) scripts/check_stub_signatures.py  # the parameters, which stubtest cannot see in pybind11 functions

lint-layers:
	python3 scripts/check_layers.py

# .clang-format and .clang-tidy over every C++ file.
lint-cpp: lint-format lint-tidy

lint-format:
	clang-format --dry-run --Werror $(CPP_FILES)

lint-tidy: $(BUILD)/CMakeCache.txt
	printf '%s\n' $(TIDY_FILES) | xargs -P$(JOBS) -n4 clang-tidy -p $(BUILD) --quiet --extra-arg=-isystem$(PY_INCLUDE)

# CI runs each fuzz target briefly; `make fuzz` runs them longer (FUZZ_SECONDS).
fuzz: bootstrap
	bash scripts/fuzz.sh

fuzz-smoke: bootstrap
	FUZZ_SECONDS=20 bash scripts/fuzz.sh

test: lint cpp-test py-test fuzz-smoke

demo: build
	$(PY) scripts/demo.py

# Issue 15's goals, each printed met / NOT MET; bench/report.py writes bench/results/
# (results.md, results.png) and README's table. The million-file case (goal 3c,
# root, ~10 min) runs when RCP_BENCH_MILLION=1000000 is set, or alone with
# `make bench-million`; otherwise the report shows its last stored run.
bench: build
	$(PY) bench/run.py
	$(PY) bench/startup_bench.py
	$(PY) bench/copy_bench.py --runs 3
	$(PY) bench/many_files.py --million $${RCP_BENCH_MILLION:-0}
	$(PY) bench/report.py

bench-million: build
	$(PY) bench/many_files.py --files 0 --million 1000000
	$(PY) bench/report.py

# As root: the lab's emulated WAN (tests/lab.py), goals 4a and 4b.
bench-wan: build
	$(PY) bench/wan_bench.py
	$(PY) bench/report.py

clean:
	rm -rf build dist
