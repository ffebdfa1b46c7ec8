# sriov-rs — the commands a user and CI run. See README.md.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)
CARGO ?= cargo

.PHONY: setup build demo test unit lint hwtest bench clean

setup:
	@bash scripts/setup.sh

build: setup
	$(CARGO) build --release --workspace --bins

## The simulated-node demo.
demo: build
	@bash scripts/demo.sh

## The whole test suite: lint, unit and tree tests, root/FUSE/netns lanes,
## and the QEMU hardware lane.
test: setup
	@bash scripts/test.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

## Only the QEMU hardware lane.
hwtest: setup
	@bash hw-tests/run-vm.sh

bench: setup
	@bash scripts/bench.sh

clean:
	$(CARGO) clean
