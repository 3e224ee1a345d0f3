# The README's two commands: `make demo` and `make test`. Both set up .venv first (idempotent).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.protege-setup
PYTEST_ARGS ?=
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=ON
ifeq ($(shell uname -m),x86_64)
# Native (AVX-512 where the CPU has it) but never AMX: see the llama.cpp line in setup.
LLAMA_CFLAGS ?= -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
endif

.PHONY: setup test demo quick browser bench bench-peers clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel setuptools
	@# torch first and pinned: 2.13.0 is the local CPU build; anything else pulls CUDA wheels.
	$(BIN)/pip install -q torch==2.13.0
	@# llama.cpp compiles from source (about 4 minutes) for this CPU, without AMX kernels: on
	@# AMX CPUs those segfault on any prompt longer than one token (llama.cpp issue 20824; seen
	@# here with 0.3.36). Measured here: 1.4x the prompt speed of a portable AVX2 build, same
	@# generation speed. --no-cache-dir: pip's wheel cache would hand back a build made elsewhere.
	CFLAGS="$(LLAMA_CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS)" CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		$(BIN)/pip install -q --no-cache-dir "llama-cpp-python[server]==0.3.36"
	$(BIN)/pip install -q -c constraints.txt -e ".[all,test]"
	$(BIN)/protege models --prepare
	@touch $(STAMP)

# Debian's Chromium drives the browser tests (chat page, HTML report).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

test: setup browser bench-peers
	@# pytest exits 5 when it collected no test: that is a failure here, like any non-zero code.
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The whole loop, offline, on the bundled bike shop (artifacts in examples/riverbend-bikes/artifacts).
demo: setup
	$(BIN)/protege run examples/riverbend-bikes
	@echo "Chat with it:  $(BIN)/protege serve examples/riverbend-bikes   then open http://127.0.0.1:8000"

# The peers the benches compare against (bench/README.md). TRL goes into .venv within constraints.txt
# (torch stays the pinned CPU build); LiteLLM and distilabel each get a venv of their own, so their
# dependencies cannot move ours; bench/peers/*.txt pin theirs. LiteLLM 1.108.7: the newest whose proxy
# extra resolves on PyPI.
LITELLM_VENV := .bench-venv-litellm
DISTILABEL_VENV := .bench-venv
BENCH_STAMP := $(VENV)/.protege-bench

bench-peers: $(BENCH_STAMP) $(LITELLM_VENV)/.installed $(DISTILABEL_VENV)/.installed

$(BENCH_STAMP): $(STAMP) pyproject.toml constraints.txt
	$(BIN)/pip install -q -c constraints.txt -e ".[all,test,bench]"
	@touch $@

$(LITELLM_VENV)/.installed: bench/peers/litellm.txt
	@test -x $(LITELLM_VENV)/bin/python || $(PY) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/pip install -q -c $< "litellm[proxy]==1.108.7"
	@touch $@

$(DISTILABEL_VENV)/.installed: bench/peers/distilabel.txt
	@test -x $(DISTILABEL_VENV)/bin/python || $(PY) -m venv $(DISTILABEL_VENV)
	$(DISTILABEL_VENV)/bin/pip install -q -c $< "distilabel[openai]==1.5.3" requests
	@touch $@

# Every side-by-side bench into bench/report.md (+ report.json); QUICK=1: smallest sizes, into
# bench/quick/ (what tests/test_bench.py runs). Take the machine to yourself: the figures are timings.
bench: setup bench-peers
	$(BIN)/python bench/run.py $(if $(QUICK),--quick)

clean:
	rm -rf $(VENV) $(LITELLM_VENV) $(DISTILABEL_VENV) .pytest_cache
