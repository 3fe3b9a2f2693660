# The two commands a newcomer needs are `make demo` and `make test` (see README.md).
# Everything else here is a step they depend on; each step is idempotent and fast when done.

CARGO ?= cargo
WASMFLOW = $(CARGO) run -p wasmflow-cli --bin wasmflow --

.PHONY: demo test setup model components test-host test-components test-golden test-platform test-kafka-broker bench fuzz-ci soak size

## Run the demo graph on the bundled readings (no broker, no flags).
demo: components
	$(WASMFLOW) run graphs/temperature-humidity.yaml --envelope --input graphs/demo/readings.jsonl

## Run every test: component logic (native), compiler, host, end to end, golden files.
test: components test-components test-host test-golden test-platform

setup:
	./scripts/setup.sh

## The digits classifier (target/models/): the snapshot operator embeds it, tests and benches use it.
model: setup
	python3 scripts/build-model.py

components: setup model
	./scripts/build-components.sh

test-components:
	cd components && $(CARGO) test --quiet
	cd components/python/fahrenheit && python3 -m unittest --quiet

## Every Rust test; then the binary type-checked with none of its optional features (README,
## "Cargo features"), which catches code that needs a feature it does not name.
test-host:
	$(CARGO) test --workspace
	$(CARGO) check -p wasmflow-cli --no-default-features
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps

test-golden:
	$(WASMFLOW) test tests/golden

## The platform's published operators (../shared/azure-samples, read in place) built unmodified
## on the open SDK (components/sdk), run on the platform's four golden tests with wasmflow's own
## modules for the rest; then t01 and t02 on wasmflow's own modules alone.
PLATFORM = ../shared/azure-samples
test-platform: components
	./scripts/build-platform-operators.sh $(PLATFORM)
	$(WASMFLOW) test $(PLATFORM)/tests --modules target/platform-modules
	$(WASMFLOW) test $(PLATFORM)/tests/t01-simple-temp-conversion $(PLATFORM)/tests/t02-complex-temp-pipeline

## The Kafka tests (and the scale-out ones) against tansu, a real Kafka-compatible broker, instead
## of librdkafka's in-process mock; the test that injects broker errors says it needs the mock.
## Not part of `test`: tansu takes ≈ 30 min to build once (scripts/setup.sh --bench).
test-kafka-broker: components
	./scripts/setup.sh --bench
	WASMFLOW_TEST_KAFKA=tansu $(CARGO) test -p wasmflow-cli --test all -- kafka:: scaleout::

## Run every benchmark; writes bench/results.md and bench/throughput.svg and updates BENCHMARKS.md
## (`make bench BENCH_QUICK=1` for a short run).
bench: components
	BENCH_QUICK=$(BENCH_QUICK) ./scripts/bench.sh

## The size of the binary `cargo install` makes (a release build of its own; part of `make bench`).
size:
	./scripts/binary-size.sh

## The fuzz targets (tests/fuzz) for 15 s each on their seed corpus: what CI runs after `make test`
## (README, "Fuzzing"; `scripts/fuzz.sh --seconds N TARGET` for longer).
fuzz-ci: setup
	./scripts/fuzz.sh --seconds 15

## The soak test: graph-complex for a few minutes through a broker restart and a kill -9; fails on
## any loss or on memory growth past its bound (BENCHMARKS.md, "Soak"). Not part of `make test`.
soak: components
	$(CARGO) bench -p wasmflow-cli --bench soak
