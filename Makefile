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

.PHONY: setup test demo quick browser clean

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

test: setup browser
	@# pytest exits 5 when it collected no test: that is a failure here, like any non-zero code.
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The whole loop, offline, on the bundled bike shop (artifacts in examples/riverbend-bikes/artifacts).
demo: setup
	$(BIN)/protege run examples/riverbend-bikes
	@echo "Chat with it:  $(BIN)/protege serve examples/riverbend-bikes   then open http://127.0.0.1:8000"

clean:
	rm -rf $(VENV) .pytest_cache
