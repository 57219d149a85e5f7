# The two commands a newcomer needs:
#   make run   install deps if missing, build, start a local cluster
#   make test  everything CI runs (.ci/run calls it)
#   make run-ha  2 NameServers, etcd and a master/slave group (failover)
.PHONY: run run-ha test deps build build-asan unit format bazel clean

JOBS ?= $(shell nproc)
BUILD_DIR ?= build

deps:
	bash scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release
	ninja -C $(BUILD_DIR) -j$(JOBS)

run: build
	BUILD_DIR=$(BUILD_DIR) bash scripts/run-local.sh

run-ha: build
	BUILD_DIR=$(BUILD_DIR) bash scripts/run-ha.sh

test:
	bash scripts/test-all.sh

unit: build
	ctest --test-dir $(BUILD_DIR) -L unit --output-on-failure -j$(JOBS)

format:
	bash scripts/check-format.sh --fix

clean:
	rm -rf $(BUILD_DIR) build-asan build-ci build-fuzz
