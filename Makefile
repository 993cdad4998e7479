# Sandgate — the README's commands.
#   make run         build strategies + server (release) and serve on 127.0.0.1:7512
#   make test        the whole test suite (what CI runs)
#   make strategies  build the strategy components (wasm32-wasip2)
#   make cluster     PostgreSQL and two nodes (127.0.0.1:7512 and :7513) on it, to try several nodes
#   make bench       benchmarks, side by side with native and Node baselines (never part of `make test`)
#   make lint        rustfmt + clippy + no import cycle between modules (make layers)

# A failing command in a pipe (cargo bench | tee) fails the recipe.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
CARGO ?= cargo
WASM_TARGET := wasm32-wasip2
# Every strategy crate of the workspace (the host is `sandgate`).
STRATEGIES := strategy-local strategy-apikey strategy-totp strategy-oidc strategy-template \
              hostile-chaos hostile-extra-import hostile-no-export
COMPONENTIZE_PY_VERSION := 0.25.1

.PHONY: run cluster test layers strategies rust-strategies python-strategies js-strategies wasm-target postgres bench lint

wasm-target:
	@if ! rustup target list --installed 2>/dev/null | grep -qx '$(WASM_TARGET)'; then \
	  echo "Installing the $(WASM_TARGET) target (rustup target add $(WASM_TARGET))…"; \
	  rustup target add $(WASM_TARGET) || { \
	    echo "error: the $(WASM_TARGET) Rust target is missing and could not be installed."; \
	    echo "       Sandgate's strategies are WebAssembly components built for it."; \
	    echo "       Install it with: rustup target add $(WASM_TARGET)"; exit 1; }; \
	fi

strategies: rust-strategies python-strategies js-strategies

# The bundled strategies again, built against the 0.1.0 contract (the components older
# servers ran), into target/wasm32-wasip2/strategy-0-1/: the tests show they keep working.
COMPAT_STRATEGIES := strategy-local strategy-apikey strategy-totp

rust-strategies: wasm-target
	$(CARGO) build --profile strategy --target $(WASM_TARGET) $(addprefix -p ,$(STRATEGIES))
	SANDGATE_WIT=0.1.0 $(CARGO) build --profile strategy-0-1 --target $(WASM_TARGET) $(addprefix -p ,$(COMPAT_STRATEGIES))

# The Python strategy (strategies/python-local) needs componentize-py, from PyPI.
python-strategies:
	@command -v componentize-py >/dev/null 2>&1 || { \
	  echo "Installing componentize-py $(COMPONENTIZE_PY_VERSION) (pip)…"; \
	  python3 -m pip install --quiet "componentize-py==$(COMPONENTIZE_PY_VERSION)" || { \
	    echo "error: componentize-py could not be installed; the Python strategy cannot be built."; exit 1; }; }
	strategies/python-local/build.sh

# The JavaScript strategy (strategies/js-local) is built by jco (QuickJS backend) from npm.
js-strategies:
	@command -v npm >/dev/null || { echo "error: Node.js and npm are needed to build the JavaScript strategy (strategies/js-local)"; exit 1; }
	strategies/js-local/build.sh

run: rust-strategies
	$(CARGO) build --release -p sandgate
	./target/release/sandgate serve

# Two nodes on one PostgreSQL (a throwaway cluster in a temporary directory); Ctrl-C stops all.
cluster: rust-strategies postgres
	$(CARGO) build --release -p sandgate
	tools/cluster.sh

# The multi-node tests and `make cluster` run a real PostgreSQL: Debian's package, installed
# when missing.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "Installing PostgreSQL (apt-get)…"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null || { \
	    echo "error: PostgreSQL could not be installed; the multi-node tests (runtime/tests/cluster.rs) need it."; \
	    echo "       Install it with: apt-get install postgresql"; exit 1; }; }

# The crate's modules must not import each other in a cycle (see docs/architecture.md).
layers:
	python3 tools/check_cycles.py --self-test
	python3 tools/check_cycles.py runtime/src

# Node packages first: the oidc tests (cargo's) log in through oidc-provider from sdk-tests/.
test: layers strategies postgres
	@command -v npm >/dev/null || { echo "error: Node.js and npm are needed for the kuzzle-sdk and oidc tests (sdk-tests/)"; exit 1; }
	cd sdk-tests && npm ci --no-audit --no-fund
	$(CARGO) test -p sandgate -p strategy-totp -p sandgate-strategy
	cd sdk-tests && SANDGATE_BIN=../target/debug/sandgate npm test

# Release build with the native comparison path; wrk from Debian when missing; 127.0.0.1 only.
bench: rust-strategies js-strategies postgres
	@command -v wrk >/dev/null || { echo "Installing wrk (apt-get)…"; \
	  (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null || { echo "error: wrk could not be installed"; exit 1; }; }
	@command -v npm >/dev/null || { echo "error: Node.js and npm are needed for the Node baseline (bench/baseline-node)"; exit 1; }
	$(CARGO) build --release -p sandgate --features bench-native
	$(CARGO) build --release -p baseline-native
	cd bench/baseline-node && npm ci --no-audit --no-fund
	$(CARGO) bench -p sandgate --features bench-native --bench sandbox | tee target/bench-micro.txt
	python3 bench/http_bench.py
	python3 bench/side_by_side.py
	python3 bench/cluster_bench.py
	python3 bench/js_strategy.py

lint: wasm-target layers
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy -p sandgate -p baseline-native --all-targets -- -D warnings
	$(CARGO) clippy --target $(WASM_TARGET) -p sandgate-strategy $(addprefix -p ,$(STRATEGIES)) -- -D warnings
