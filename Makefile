# attachd — the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: run build web test test-rust test-web test-deploy lint fmt bench bench-scale bench-flood fuzz clean

## Start the gateway on the embedded default (local PTY, no Redis), with ./attachd.toml when present.
run: build web
	./target/debug/attachd serve --dev $$([ -f attachd.toml ] && echo --config attachd.toml)

build:
	$(CARGO) build --workspace --bins

## Build the browser client into web/dist (needs node + npm).
web:
	@if [ -f web/package.json ]; then \
	  cd web && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm run build; \
	fi

## Every test: Rust unit + black-box tests, web unit + browser tests, deploy checks.
test: build web test-rust test-web test-deploy

test-rust:
	$(CARGO) test --workspace -- --test-threads=4

test-web:
	@if [ -f web/package.json ]; then cd web && npm test && npm run e2e; fi

test-deploy:
	@if [ -f deploy/tests/check_manifests.py ]; then python3 deploy/tests/check_manifests.py; fi
	@if [ -f deploy/tests/check_monitoring.py ]; then python3 deploy/tests/check_monitoring.py; fi

## Benchmarks: release attachd (+ terminado, wetty peers) on loopback → bench/results/latest.md.
bench:
	bash bench/run.sh

## Scale scenario (not in bench or test): 100k idle connections over replicas sharing Redis,
## a 3,000-observer crowd, one replica past its open-file limit → bench/results/scale.md.
bench-scale:
	bash bench/scale.sh

## 10,000 observers of one session through a flood, each checked to end on the driver's final
## screen, over 4 client processes (not in bench or test) → bench/results/flood.md.
bench-flood:
	bash bench/flood.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	# The fuzz targets (their own workspace) must keep compiling against the crates they fuzz;
	# sharing target/ reuses the dependencies clippy just checked.
	$(CARGO) check --manifest-path fuzz/Cargo.toml --target-dir target --no-default-features --bins --quiet

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf web/dist

## Fuzz every parser of untrusted input for FUZZ_SECONDS (default 30) each (cargo-fuzz, stable + RUSTC_BOOTSTRAP).
fuzz:
	bash fuzz/run.sh

.PHONY: schemathesis
## Property-based API tests of a real attachd against its /openapi.json (schemathesis, pinned, in a venv).
schemathesis:
	bash tests/schemathesis/run.sh
