# The two commands of this project (see README.md):
#   make lab    set everything up, then start JupyterLab on 127.0.0.1 in notebooks/
#   make test   set everything up, then run every test (what .ci/run does)
# Everything is installed inside this folder (.venv, .tools, .xla, .jupyter);
# `make uninstall` removes it all.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT    := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
PYTHON  ?= python3
VENV    := $(ROOT)/.venv
VPY     := $(VENV)/bin/python
TOOLS   := $(ROOT)/.tools/bin
XLA_DIR := $(ROOT)/.xla
STAMPS  := $(ROOT)/.stamps
KERNELSPEC := $(VENV)/share/jupyter/kernels/goptlab/kernel.json
XLA_PLUGIN := $(XLA_DIR)/pjrt_c_api_cpu_plugin.so
# Where pip puts the xla-cpu-pjrt wheel's shared library inside the venv.
XLA_WHEEL_SO = $(wildcard $(VENV)/lib/python3*/site-packages/xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so)

# Jupyter keeps its runtime files, config and settings in the project, not in $HOME.
export JUPYTER_CONFIG_DIR        := $(ROOT)/.jupyter/config
export JUPYTER_RUNTIME_DIR       := $(ROOT)/.jupyter/runtime
export JUPYTERLAB_SETTINGS_DIR   := $(ROOT)/.jupyter/lab/user-settings
export JUPYTERLAB_WORKSPACES_DIR := $(ROOT)/.jupyter/lab/workspaces
export JUPYTER_PLATFORM_DIRS     := 1
# Go programs and tests find XLA's CPU plugin here; GoMLX never downloads one.
export PJRT_PLUGIN_LIBRARY_PATH  := $(XLA_DIR)
export GOMLX_NO_AUTO_INSTALL     := 1

# Go files whose change means the build cache should be warmed again.
GO_SOURCES := $(shell find $(ROOT) -name '*.go' -not -path '$(ROOT)/.*' 2>/dev/null)

.PHONY: help setup lab test test-go test-kernel fuzz bench-kernel bench vet uninstall prereqs

help:
	@echo "make lab          set up (once) and start JupyterLab on 127.0.0.1 in notebooks/"
	@echo "make test         set up (once) and run all tests: gofmt, go vet, go test, kernel tests, notebooks, fuzz"
	@echo "make bench-kernel time kernel start to first cell output, cold and warm, over 5 fresh kernels"
	@echo "make bench        the optimizer benchmarks (bench-optim, bench-zo, bench-localsgd) on XLA CPU"
	@echo "make fuzz         run every Go fuzz target for FUZZTIME each (default 10s; e.g. FUZZTIME=5m)"
	@echo "make setup        only install: .venv (Jupyter, XLA CPU plugin), .tools (GoNB, goimports, gopls), kernelspec"
	@echo "make uninstall    remove everything setup installed in this folder"

prereqs:
	@$(ROOT)/kernel/check-prereqs.sh "$(PYTHON)"

setup: prereqs $(STAMPS)/venv $(STAMPS)/tools $(STAMPS)/xla $(KERNELSPEC) $(STAMPS)/warm

# Python side: JupyterLab, nbclient, jupyter_kernel_test, pytest and the XLA CPU plugin wheel.
$(STAMPS)/venv: $(ROOT)/kernel/requirements.txt $(ROOT)/kernel/constraints.txt
	@echo "setup: installing Python packages into $(VENV)"
	@[ -x "$(VPY)" ] || $(PYTHON) -m venv "$(VENV)"
	@"$(VPY)" -m pip install --quiet --disable-pip-version-check \
		-r $(ROOT)/kernel/requirements.txt -c $(ROOT)/kernel/constraints.txt
	@mkdir -p $(STAMPS) && touch $@

# Go tools, built from go.mod's `tool` directives (GoNB, goimports) and from
# kernel/gopls/go.mod (gopls v0.21.x needs an older golang.org/x/tools than GoMLX).
$(STAMPS)/tools: $(ROOT)/go.mod $(ROOT)/go.sum $(ROOT)/kernel/gopls/go.mod $(ROOT)/kernel/gopls/go.sum
	@echo "setup: building GoNB, goimports and gopls into $(TOOLS)"
	@mkdir -p $(TOOLS)
	@cd $(ROOT) && GOBIN=$(TOOLS) go install tool
	@cd $(ROOT)/kernel/gopls && GOBIN=$(TOOLS) go install tool
	@# GoNB runs `go get` in each notebook's module: with every module of the graph in the
	@# module cache, notebooks work offline (GOPROXY=off), as the kernel tests check.
	@cd $(ROOT) && go mod download all
	@mkdir -p $(STAMPS) && touch $@

# go-xla looks for plugins named pjrt_c_api_<name>_plugin.so: link the wheel's library
# under that name, then check that it loads and computes. (A stamp, not the link itself,
# is the target: make would compare the wheel file's own, older, time.)
$(STAMPS)/xla: $(STAMPS)/venv $(ROOT)/go.sum
	@so="$(XLA_WHEEL_SO)"; [ -n "$$so" ] || { echo "setup: the xla-cpu-pjrt wheel installed no xla_cpu_pjrt.so in $(VENV)" >&2; exit 1; }; \
		mkdir -p $(XLA_DIR) && ln -sfn "$$so" $(XLA_PLUGIN).tmp && mv -fT $(XLA_PLUGIN).tmp $(XLA_PLUGIN)
	@cd $(ROOT) && GOMLX_BACKEND= go run ./cmd/mlx-backend -require=xla_cpu
	@mkdir -p $(STAMPS) && touch $@

$(KERNELSPEC): $(STAMPS)/venv $(ROOT)/kernel/install-kernelspec.sh $(ROOT)/kernel/logo-svg.svg
	@$(ROOT)/kernel/install-kernelspec.sh "$(VENV)/share/jupyter"

# Compile GoMLX, go-xla, GoNB's display package and our packages once, so a
# notebook's first cell only compiles its own code.
$(STAMPS)/warm: $(ROOT)/go.sum $(GO_SOURCES)
	@echo "setup: warming the Go build cache"
	@cd $(ROOT) && go build ./... && go test -count=1 -run '^$$' ./... >/dev/null
	@mkdir -p $(STAMPS) && touch $@

lab: setup
	@echo "Starting JupyterLab on 127.0.0.1 (open the URL with ?token=... printed below); Ctrl-C stops it."
	@$(ROOT)/kernel/lab.sh $(LAB_FLAGS)

vet: setup
	@cd $(ROOT) && test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed on:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	@cd $(ROOT) && go vet ./...

test-go: setup
	@cd $(ROOT) && go test -timeout 20m ./...

# kernel/tests with the real kernel: jupyter_kernel_test conformance, platform behaviours,
# injected faults and headless execution of every notebook.
test-kernel: setup
	@cd $(ROOT) && "$(VPY)" -m pytest -q -p no:cacheprovider kernel/tests

# Every fuzz target of every package, FUZZTIME each (short in `make test`, longer on demand).
# A failing input is saved under the package's testdata/fuzz/ and replayed by go test from then on.
FUZZTIME ?= 10s
fuzz: setup
	@cd $(ROOT) && for pkg in $$(go list ./...); do \
		for target in $$(go test -list '^Fuzz' "$$pkg" | grep '^Fuzz' || true); do \
			echo "fuzz: $$target in $$pkg for $(FUZZTIME)"; \
			go test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) "$$pkg" || exit 1; \
		done; \
	done

test: vet test-go test-kernel fuzz

bench: setup
	@cd $(ROOT) && go run ./cmd/bench-optim && go run ./cmd/bench-zo && go run ./cmd/bench-localsgd

bench-kernel: setup
	@cd $(ROOT) && "$(VPY)" kernel/bench_kernel.py --kernels 5

uninstall:
	rm -rf "$(VENV)" "$(ROOT)/.tools" "$(XLA_DIR)" "$(ROOT)/.jupyter" "$(STAMPS)"
	@echo "Removed the project's installs. Go's module and build caches are shared by all Go projects:"
	@echo "'go clean -cache -modcache' empties them."
