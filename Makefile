# Run `make help` for the list of targets.
.DEFAULT_GOAL := help
GO ?= go
CONFIG ?= configs/app.yaml
SQLC := $(GO) run github.com/sqlc-dev/sqlc/cmd/sqlc@v1.31.1

.PHONY: help run test bench generate check-generated lint build

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## run the app on CONFIG (default configs/app.yaml: gochannel + SQLite, no services needed)
	$(GO) run ./cmd/app --config $(CONFIG)

build: ## build bin/app
	$(GO) build -o bin/app ./cmd/app

test: check-generated lint ## run every test (service tests skip when their service is unreachable, fail with REQUIRE_SERVICES=1)
	@# watermill-amqp v3.1.0 races on its own connection flag when it reconnects
	@# (ThreeDotsLabs/watermill#693), so the AMQP reconnect case runs without -race.
	$(GO) test -count=1 -race -skip 'TestAMQPConformance/Reconnect' $$($(GO) list ./... | grep -v /faults)
	$(GO) test -count=1 -run 'TestAMQPConformance/Reconnect' ./platform/bus/
	@# The fault tests stop brokers and drop every connection: they run alone.
	$(GO) test -count=1 -timeout 20m ./faults/

bench: ## run the bus and outbox relay benchmarks against every adapter
	$(GO) test -run '^$$' -bench . -benchtime 20000x ./platform/bus/ ./platform/outbox/

generate: ## regenerate the sqlc code from migrations and queries
	$(SQLC) generate

check-generated: ## fail when the committed sqlc code is stale
	$(SQLC) diff

lint: ## gofmt and go vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
