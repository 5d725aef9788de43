# Run `make help` for the list of targets.
.DEFAULT_GOAL := help
GO ?= go
CONFIG ?= configs/app.yaml
# sqlc and golangci-lint are pinned in tools/tools.mod, a go.mod of its own
# so their dependencies stay out of the application's. Not named go.mod: that
# would make tools/ a module of its own, which gonew and module downloads
# leave out. Bump one with
# go get -modfile=tools/tools.mod -tool github.com/sqlc-dev/sqlc/cmd/sqlc@VERSION
TOOL := $(GO) tool -modfile=tools/tools.mod
SQLC := $(TOOL) sqlc
# Tests that need sqlc or a build of their own: make check runs them, make test not.
CHECK_TESTS := ^(TestScaffoldedContextWorks|TestDockerfile)$$
# Every store owns its sqlc.yaml beside its migrations and queries.
SQLC_CONFIGS = $(shell find contexts platform -name sqlc.yaml | sort)

# The image make image builds: the module's last path element.
IMAGE ?= $(notdir $(shell $(GO) list -m))

.PHONY: help run test check test-faults up down image bench bench-micro generate docs check-generated lint build context context-remove

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## run the app on CONFIG (default configs/app.yaml: gochannel + SQLite, no services needed)
	$(GO) run ./cmd/app --config $(CONFIG)

build: ## build bin/app
	$(GO) build -o bin/app ./cmd/app

test: ## unit and integration tests (service tests skip when their service is unreachable, fail with REQUIRE_SERVICES=1)
	@# watermill-amqp v3.1.0 races on its own connection flag when it reconnects
	@# (ThreeDotsLabs/watermill#693), so the tests that drop AMQP connections
	@# (the reconnect case, the bridge test) run without -race.
	@# make check runs $(CHECK_TESTS): the scaffold's end-to-end test runs
	@# sqlc, and the Dockerfile's flags share no build cache with go test, so
	@# on a fresh machine each compiles for minutes.
	$(GO) test -count=1 -race -skip 'TestAMQP(Quorum)?Conformance/Reconnect|TestBridgeSurvivesAConnectionDrop|$(CHECK_TESTS)' $$($(GO) list ./... | grep -v /faults)
	$(GO) test -count=1 -run 'TestAMQP(Quorum)?Conformance/Reconnect|TestBridgeSurvivesAConnectionDrop' ./platform/bus/

check: check-generated lint ## committed sqlc code up to date, lint, a scaffolded context built, tested and run, the Dockerfile's build
	$(GO) test -count=1 -run '$(CHECK_TESTS)' ./cmd/scaffold/ ./deploy/

test-faults: ## the fault tests: they stop brokers and drop every connection, so run them alone
	$(GO) test -count=1 -timeout 20m ./faults/

up: ## start RabbitMQ, Redis, NATS and PostgreSQL (compose.yaml) and wait until they are healthy
	docker compose up -d --wait

down: ## stop the services of make up and delete their data
	docker compose down --volumes

image: ## build the container image IMAGE (default: the module's name) from the Dockerfile
	docker build -t $(IMAGE) .

bench: ## cmd/busbench: one table of the bus, bare Watermill, raw clients, relay and real path per reachable service (BENCH_FLAGS=-adapter amqp ...)
	@$(GO) run ./cmd/busbench $(BENCH_FLAGS)

bench-micro: ## the go test micro-benchmarks of platform/bus and platform/outbox
	$(GO) test -run '^$$' -bench . -benchtime 20000x ./platform/bus/ ./platform/outbox/

generate: ## regenerate the sqlc code of every store from its migrations and queries
	@for f in $(SQLC_CONFIGS); do echo "sqlc generate -f $$f"; $(SQLC) generate -f $$f || exit 1; done

docs: ## regenerate docs/events.md, docs/asyncapi.yaml and README.md's flowchart from what the binary registers
	$(GO) test -count=1 -run '^TestGeneratedDocs$$' ./cmd/app -update

check-generated: ## fail when the committed sqlc code of any store is stale
	@for f in $(SQLC_CONFIGS); do $(SQLC) diff -f $$f || { echo "stale: $$f (run make generate)"; exit 1; }; done

context: ## add a bounded context: make context NAME=billing [AGGREGATE=invoice]
	$(GO) run ./cmd/scaffold context $(if $(AGGREGATE),-aggregate $(AGGREGATE)) $(NAME)

context-remove: ## remove a bounded context: make context-remove NAME=billing
	$(GO) run ./cmd/scaffold remove-context $(NAME)

lint: ## golangci-lint, configured in .golangci.yml (gofmt, goimports, go vet and more)
	$(TOOL) golangci-lint run ./...
