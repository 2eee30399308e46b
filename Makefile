# Flowsentry — see README.md. Two commands matter on a fresh machine:
#   make demo   runs the whole pipeline end to end
#   make test   starts Kafka and ClickHouse and runs every test against them
SHELL       := /bin/bash
MODULES     := schemas collector detector alerter benchmarks
PKGS        := $(foreach m,$(MODULES),./$(m)/...)
GO          ?= go
GOTESTSUM   := $(GO) run gotest.tools/gotestsum@v1.13.0
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
PROTOC_GEN_GO := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
RUN         := $(CURDIR)/.run
FUZZTIME    ?= 10m
TEST_TIMEOUT ?= 30m

.PHONY: all build test test-unit test-faults demo bench generate lint fuzz services-up services-down clean

all: build

## build: compile every service into bin/
build:
	@mkdir -p bin
	$(GO) build -o bin/ $(foreach m,$(MODULES),$(wildcard ./$(m)/cmd/*))

## test: start the real services, then unit + integration tests (tag integration)
test: services-up
	@mkdir -p $(RUN) $(RUN)/artifacts
	FLOWSENTRY_ARTIFACTS=$(RUN)/artifacts $(GOTESTSUM) --format pkgname-and-test-fails --jsonfile $(RUN)/test.json \
		-- -tags integration -count=1 -timeout $(TEST_TIMEOUT) -p 2 $(PKGS)

## test-unit: tests that need no service
test-unit:
	$(GOTESTSUM) --format pkgname-and-test-fails -- -count=1 $(PKGS)

## test-faults: tests that stop and restart the shared services (tag faults)
test-faults: services-up
	@mkdir -p $(RUN)
	$(GOTESTSUM) --format standard-verbose --jsonfile $(RUN)/test-faults.json \
		-- -tags faults -run Fault -count=1 -timeout $(TEST_TIMEOUT) -p 1 $(PKGS)

## demo: the whole pipeline end to end on this machine (KEEP=1 leaves it running)
demo: build services-up
	KEEP=$(KEEP) bash deploy/scripts/demo.sh

## bench: every benchmark; QUICK=1 for the short CI smoke run
bench: build
	QUICK=$(QUICK) bash benchmarks/run.sh

## generate: regenerate protobuf Go code from schemas/proto
generate:
	GOBIN=$(RUN)/gobin $(GO) install $(PROTOC_GEN_GO)
	protoc -I schemas/proto --plugin=$(RUN)/gobin/protoc-gen-go \
		--go_out=schemas/pb --go_opt=paths=source_relative schemas/proto/*.proto

## lint: go vet and staticcheck on every module
lint:
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)

## fuzz: run every fuzz target for FUZZTIME each (seeds already run in make test)
fuzz:
	bash deploy/scripts/fuzz.sh $(FUZZTIME)

## services-up / services-down: local Kafka (KRaft) and ClickHouse, data in .run/
services-up:
	bash deploy/scripts/services-up.sh

services-down:
	bash deploy/scripts/services-down.sh

clean:
	rm -rf bin
