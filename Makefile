# rcp: `make test` and `make demo` work on a fresh Debian 12 machine.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python
BUILD := build/cpp
JOBS  ?= $(shell nproc)
STAMP := third_party/prefix/.ngtcp2

.PHONY: all bootstrap build cpp python test cpp-test py-test lint fuzz fuzz-smoke demo bench bench-wan clean

all: build

bootstrap:
	bash scripts/bootstrap.sh

$(BUILD)/CMakeCache.txt: CMakeLists.txt | bootstrap
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRCP_BUILD_TESTS=ON >/dev/null

cpp: bootstrap $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j$(JOBS)

python: bootstrap
	$(PY) -m pip install --no-build-isolation --no-deps --disable-pip-version-check -q .

build: cpp python

cpp-test: cpp
	ctest --test-dir $(BUILD) --output-on-failure --timeout 300 -j$(JOBS)

py-test: python
	$(PY) -m pytest -v --durations=10 tests

# House rules: layer directions of #include (more checks join here).
lint:
	python3 scripts/check_layers.py

# CI runs each fuzz target briefly; `make fuzz` runs them longer (FUZZ_SECONDS).
fuzz: bootstrap
	bash scripts/fuzz.sh

fuzz-smoke: bootstrap
	FUZZ_SECONDS=20 bash scripts/fuzz.sh

test: cpp-test py-test fuzz-smoke

demo: build
	$(PY) scripts/demo.py

bench: build
	$(PY) bench/run.py
	$(PY) bench/copy_bench.py

# As root: the lab's emulated WAN (tests/lab.py).
bench-wan: build
	$(PY) bench/wan_bench.py

clean:
	rm -rf build
