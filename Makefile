# duochrome — build, test and run the frontend and the broker.
#
#   make build     bin/frontend and bin/broker (static, CGO off)
#   make test      vet, gofmt, unit tests, fuzzing, end-to-end tests (root)
#   make fuzz      every fuzz target for FUZZTIME (default 10s) each
#   make lint      go vet, gofmt -l and staticcheck when it is installed
#   make install   install into $(PREFIX) with setcap on the broker (root/sudo)
#   make run       install Chromium if needed, build, install, start on :8080
#   make clean     remove bin/

# Go may live at /usr/local/go without being on PATH; a go already on PATH
# wins because it comes first.
export PATH := $(PATH):/usr/local/go/bin

GO       ?= go
PREFIX   ?= /opt/duochrome
LISTEN   ?= 127.0.0.1:8080

# The broker calls syscall.AllThreadsSyscall, which refuses to run in a cgo
# binary, so both binaries are built with cgo off.
export CGO_ENABLED := 0

.PHONY: build test unit fuzz e2e lint lint-core install run clean

build:
	$(GO) build -trimpath -o bin/frontend ./cmd/frontend
	$(GO) build -trimpath -o bin/broker ./cmd/broker

# What CI runs (.ci/run, as make -k test, so that every step runs even when
# an earlier one fails).
test: lint-core unit fuzz e2e

unit:
	$(GO) test -count=1 -timeout 5m $$($(GO) list ./... | grep -v '^duochrome/e2e$$')

# Every fuzz target, briefly (FUZZTIME, default 10s each).
fuzz:
	scripts/fuzz.sh

# The end-to-end tests build their own copies of the binaries, install them
# in a temporary layout and need root; without it they skip and say so.
e2e:
	$(GO) test -count=1 -v -timeout 20m ./e2e/

lint-core:
	$(GO) vet ./...
	scripts/gofmt-check.sh

lint: lint-core
	scripts/staticcheck.sh

install: build
	scripts/install.sh $(PREFIX)

run: build
	PREFIX=$(PREFIX) LISTEN=$(LISTEN) scripts/run.sh

clean:
	rm -rf bin/

# Benchmarks against Chromium's own start-up and pipe (docs/benchmarks.md).
# Needs root: builds and installs both binaries in a temporary layout under
# /var/lib with setcap on the broker, as the end-to-end tests do. About 3
# minutes; BENCH_QUICK=1 runs every measurement briefly (under a minute),
# only to show that it works. BENCH_FLAGS passes flags to the benchmark,
# e.g. BENCH_FLAGS='-frontend-flag=--some-flag'.
BENCH_FLAGS ?=

.PHONY: bench
bench:
	$(GO) run ./bench $(BENCH_FLAGS)

# The container image and Kubernetes proofs alone (deploy/): manifests
# decoded into the Kubernetes API types, the Dockerfile checked, and the
# Deployment's securityContext enacted with runc (root, runc, tini and
# Chromium; a few seconds). make unit runs them too.
.PHONY: deploy-test
deploy-test:
	$(GO) test -count=1 -v -timeout 5m ./deploy/
