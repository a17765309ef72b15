# Skiff build, test and run targets. `make up` and `make test` are the two
# commands the README promises work on a fresh machine.
SHELL := /bin/bash
GO ?= go
BIN := bin/skiff
# Core packages: run under the race detector in `make test`.
CORE_PKGS := ./raftstore/... ./jepsen/checker/... ./api/... ./apiserver/... ./client/... ./controller/... ./sched/...
# The agent's tests need root and a real containerd; they skip (with a message) otherwise.
AGENT_PKGS := ./agent/...
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
BUF := github.com/bufbuild/buf/cmd/buf@v1.57.0
IS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo yes)

.PHONY: all build deps test test-unit test-agent test-apiserver-skiff test-e2e test-multinode lint proto up down bench-store jepsen jepsen-smoke images bench-pods bench-pods-runtime bench-net clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/skiff

# deps installs the Debian packages the tests and benchmarks use, when missing.
deps:
	@scripts/deps.sh

test: deps build test-unit test-agent test-apiserver-skiff test-e2e
ifeq ($(IS_ROOT),yes)
	$(MAKE) jepsen-smoke
endif
	@echo "make test: all suites passed"

test-unit:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m $(CORE_PKGS)
	$(GO) test -count=1 -timeout 10m $$($(GO) list ./... | grep -v -e /raftstore -e /jepsen/checker -e /api -e /client -e /controller -e /sched -e /agent)

test-agent:
	$(GO) test -race -count=1 -timeout 15m $(AGENT_PKGS)

# The API server suites again, on Skiff's own store instead of etcd.
test-apiserver-skiff:
	SKIFF_TEST_STORE=skiff $(GO) test -count=1 -timeout 10m ./apiserver/... ./client/... ./cmd/skiff/

# test-e2e drives a 3-member Skiff cluster with Debian's etcdctl.
test-e2e: build
	scripts/e2e-etcdctl.sh $(BIN)

# test-multinode: a server and three agents on three hosts made of network
# namespaces (root, containerd): cross-node pod IPs, Service DNS, ClusterIP
# spread, NodePort on every node, node loss and a rolling update under load,
# with the figures printed (FIGURE lines). Skips with a message unless root.
test-multinode: build
	SKIFF_BINARY=$(CURDIR)/$(BIN) $(GO) test -count=1 -v -timeout 25m ./e2e/multinode/

lint:
	@fmt_out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	  if [ -n "$$fmt_out" ]; then echo "gofmt needed:"; echo "$$fmt_out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

proto:
	$(GO) run $(BUF) lint
	$(GO) run $(BUF) generate

# up: skiff up (control plane + agent + private containerd) in the background,
# the test images imported, the demo Deployment (deploy/demo.yaml) rolled out.
up: deps build
	scripts/up.sh $(BIN)

# down: stop skiff up and remove its pods, bridge, cgroups and containerd.
down:
	scripts/down.sh $(BIN)

bench-store: deps build
	$(BIN) bench store

# bench-sched: pods/s bound, and reported Running by hollow nodes (a Node and
# Lease each, pod status written without containers), end to end through the
# API (in-process raftstore + API server). SKIFF_BENCH_SCHED_NODES=1000,5000
# SKIFF_BENCH_SCHED_PODS=10000 by default; SKIFF_BENCH_SCHED_CPUPROFILE=file.
bench-sched:
	SKIFF_BENCH_SCHED=1 $(GO) test ./sched -run TestBenchSchedE2E -count=1 -v -timeout 60m

jepsen-smoke: build
	$(BIN) jepsen smoke --skiff-binary $(BIN)

jepsen: build
	$(BIN) jepsen suite --skiff-binary $(BIN)

# images writes the busybox-static test image tarballs (no registry needed).
images: build
	$(BIN) image build-test --out build/images

# Pod start latency through the API (create → Running seen by a watch) for 1
# and 100 pods on one node run by the built `skiff agent`, where the time went,
# its and containerd's memory and CPU, and a check that the teardown left
# nothing (a figure, not a test; root). SKIFF_BENCH_PROFILES=DIR keeps the
# agent's heap and CPU profiles.
bench-pods: deps build
	set -o pipefail; SKIFF_BINARY=$(CURDIR)/$(BIN) SKIFF_BENCH_PODS=100 $(GO) test ./agent/node -run TestBenchPods -v -count=1 -timeout 20m | grep -v '^time='

# HTTP requests/s and p50/p99 from the host to one pod: straight to its pod IP,
# through its Service's ClusterIP and NodePort (iptables) and through the
# Ingress router, keep-alive and a new connection per request, as one table
# with the ratio to the pod IP (a figure, not a test; root, about 3 minutes).
bench-net: deps
	set -o pipefail; SKIFF_BENCH_NET=1 $(GO) test ./agent/node -run TestBenchNet -v -count=1 -timeout 15m | grep -v '^time='

# Pod start latency on one node at the runtime level (a figure, not a test).
bench-pods-runtime:
	SKIFF_BENCH_PODS=100 $(GO) test ./agent/runtime -run TestManyPods -v -count=1

clean:
	rm -rf bin out build
