# obol's developer commands. `make test` is what CI runs (.ci/run).

GO           ?= go
TEST_TIMEOUT ?= 15m
FUZZTIME     ?= 2m
BENCH        ?= .
BENCHTIME    ?= 1s

# Two test binaries run at a time, one per core: one at a time the suite
# no longer fits CI's 20 minutes. Tests wait on events, not on time, so
# they must pass either way; `make test TEST_PARALLEL=1` runs them one by
# one.
TEST_PARALLEL ?= 2
RACE_FLAGS    += -p $(TEST_PARALLEL)

# CI runs every test afresh; locally go test's cache skips unchanged ones.
ifneq ($(CI),)
RACE_FLAGS += -count=1
endif

# Fuzz targets as ./package:FuzzName, found in the test files by default;
# `go test -fuzz` takes one at a time. Narrow with e.g.
#   make fuzz FUZZ_TARGETS=./descriptor:FuzzDecode FUZZTIME=5m
FUZZ_TARGETS ?= $(shell ./scripts/fuzz-targets.sh)
# Fuzz workers per target (go test -parallel); the fuzzer takes every core
# it is given.
FUZZ_PARALLEL ?= 1

.PHONY: test deps vet race sim build fuzz bench

## test: install what the tests need, then vet and run every test with
## -race, and the simulator's virtual-time tests without it (the race
## detector crashes in synctest bubbles: golang/go#78156)
test: deps vet race sim

deps:
	./scripts/install-test-deps.sh

vet:
	$(GO) vet ./...

race:
	$(GO) test -race $(RACE_FLAGS) -timeout $(TEST_TIMEOUT) ./...

sim:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run 'TestSmall|TestAdversaries|TestLateSybils' ./sim

## build: the obol binary, CGO-free, at bin/obol
build:
	CGO_ENABLED=0 $(GO) build -buildvcs=true -o bin/obol ./cmd/obol

## fuzz: run each target in FUZZ_TARGETS for FUZZTIME, keeping new corpus
## entries as seeds in testdata/fuzz (see scripts/fuzz.sh)
fuzz:
	@GO='$(GO)' FUZZTIME='$(FUZZTIME)' FUZZ_PARALLEL='$(FUZZ_PARALLEL)' \
		./scripts/fuzz.sh $(FUZZ_TARGETS)

## bench: every benchmark, with allocations
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -benchmem ./...
