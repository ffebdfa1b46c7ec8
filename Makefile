# sriov-rs — the commands a user and CI run. See README.md.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo

.PHONY: setup build demo test unit lint hwtest bench clean cluster cluster-down cluster-test cluster-scale docs

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release --workspace --bins

## The demo (docs/quickstart.md): the Helm chart on a local single-node
## Kubernetes whose node is a simulated SR-IOV node, from a policy to a pod
## with a VF, then torn down (DEMO_KEEP=1 leaves it up). Where the cluster
## cannot run (not root, no FUSE, no Go…) it says why and runs the
## simulated-node demo without Kubernetes (SRIOV_DEMO_SIM=1 forces that).
demo: build
	@bash scripts/demo.sh

## The whole test suite: lint, unit and tree tests, root/FUSE/netns lanes,
## and the QEMU hardware lane.
test: setup
	@bash scripts/test.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	bash scripts/fuzz.sh clippy
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

## Only the QEMU hardware lane.
hwtest: setup
	@bash hw-tests/run-vm.sh

## A single-node Kubernetes 1.34 on this machine (docs/cluster.md); the
## last line printed is KUBECONFIG=<path>. `make cluster-down` removes it.
cluster: setup
	@bash scripts/cluster.sh up

cluster-down:
	@bash scripts/cluster.sh down

## Only the cluster lane: up, the components as DaemonSets on a simulated
## node, down.
cluster-test: setup
	@bash cluster/tests/lane.sh

## The operator at scale (not in `make test`: minutes of CPU on 2 cores):
## 1,000 kwok nodes with node states, one policy change timed, API requests
## counted (docs/cluster.md, "Scale").
cluster-scale: setup
	@bash cluster/tests/scale.sh

## The manual (docs/) as an mdBook site in target/book/, then an offline
## check of every link and anchor in it (docs/README.md).
docs:
	@command -v mdbook >/dev/null 2>&1 || $(CARGO) install mdbook --version 0.5.4 --locked
	mdbook build docs
	python3 scripts/linkcheck.py target/book

bench: setup
	@bash scripts/bench.sh

clean:
	$(CARGO) clean
