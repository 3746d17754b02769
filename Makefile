# nitro-cosigner — `make` lists the targets.

GO                 ?= go
# staticcheck 2026.2.2; pinned, fetched from the Go module proxy by `go run`.
STATICCHECK        := honnef.co/go/tools/cmd/staticcheck@v0.8.2
TEST_TIMEOUT       ?= 20m
FUZZTIME           ?= 30s
BENCHTIME          ?= 1x
RELEASE_TAGS       := release netgo osusergo sqlite_omit_load_extension

export GOTOOLCHAIN := local
export CGO_ENABLED := 1

.DEFAULT_GOAL := help

.PHONY: help build build-release test soak lint fmt-check vet staticcheck proto proto-check bench bench-smoke bench-go fuzz demo clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build cosigner-enclave, cosigner-parent and cosignerctl (dev builds) into bin/
	$(GO) build -trimpath -o bin/ ./cmd/...

build-release: ## build the release cosigner-enclave (no simulator; static) into bin/release/
	$(GO) build -trimpath -tags '$(RELEASE_TAGS)' \
		-ldflags '-s -w -buildid= -linkmode external -extldflags "-static -Wl,--build-id=none"' \
		-o bin/release/cosigner-enclave ./cmd/cosigner-enclave

test: ## run the test suite (race detector on; builds the pinned real S3 and SQS servers once), then bench-smoke
	NITRO_S3SERVER_REQUIRED=1 NITRO_GOAWS_REQUIRED=1 $(GO) test -race -timeout $(TEST_TIMEOUT) ./...
	@# The heavy CMP tests (keygen, refresh, presign, full sign: minutes each
	@# under -race) run here without the race detector; make soak runs them with it.
	@# test/procpath's CMP sign across processes and enclave/node's presignature
	@# pools through the coordinator run only in this pass too.
	$(GO) test -timeout $(TEST_TIMEOUT) ./enclave/mpc/... ./enclave/node/... ./test/procpath/...
	@# The demo flow end to end, its CMP half included (under -race only its FROST half runs).
	$(GO) test -timeout $(TEST_TIMEOUT) -run '^TestDemo$$' ./test/e2e/
	@# The benchmark harness at tiny sizes (about a minute on 2 cores): it must
	@# run and write a well-formed results file; it reports figures, asserts none.
	$(MAKE) --no-print-directory bench-smoke

soak: ## long suites: every CMP test under -race, 3-of-5 and 4-of-7 keygens, faulty networks; the reliability suites' long versions
	$(GO) test -race -tags soak -timeout 90m ./enclave/mpc/...
	@# Without the race detector, so that CMP keygen, refresh and presignatures
	@# fit: 60 crash points, 520 hostile-broker sessions, 3,000 overload calls
	@# (docs/reliability.md). The summary table is printed at the end.
	@mkdir -p bin && rm -f bin/reliability-summary.txt
	NITRO_RELIABILITY_SUMMARY=$(CURDIR)/bin/reliability-summary.txt \
		$(GO) test -tags soak -timeout 180m ./test/reliability/ || { cat bin/reliability-summary.txt 2>/dev/null; exit 1; }
	@cat bin/reliability-summary.txt

lint: fmt-check vet staticcheck proto-check ## gofmt, go vet, staticcheck (dev and release builds), proto-check

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags release ./...
	$(GO) vet -tags soak ./enclave/mpc/... ./test/reliability/...

staticcheck:
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(STATICCHECK) -tags release ./...

proto: ## regenerate proto/'s Go code (pinned buf and plugins, built once; see tools/protoc)
	bash tools/protoc/gen.sh generate

proto-check: ## lint proto/ and fail, with a diff, if regenerating changes the committed code
	bash tools/protoc/gen.sh check

bench: build ## the benchmark harness (bench/): devnets on this machine, library and tss-lib ratios, sealed state; writes bench/results.json and BENCHMARKS.md (about 11 minutes on 2 cores)
	$(GO) build -o bin/bench ./bench/cmd/bench
	bin/bench run -bin bin -tsslib bench/tsslib -out bench/results.json -md BENCHMARKS.md
	bin/bench check -require bench/results.json

bench-smoke: build ## the benchmark harness at tiny sizes (under two minutes): checks that it runs and writes a well-formed results file; asserts no figure
	$(GO) build -o bin/bench ./bench/cmd/bench
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
		bin/bench run -smoke -bin bin -tsslib bench/tsslib -out "$$tmp/results.json" -md "$$tmp/BENCHMARKS.md" && \
		bin/bench check "$$tmp/results.json"

bench-go: ## the Go microbenchmarks (go test -bench; BENCHTIME=1x by default; e.g. BENCHTIME=5x)
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -benchmem -timeout 60m ./...

fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	@set -e; for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

demo: build ## see it work: a devnet; a 2-of-3 CMP key signs an EIP-1559 transfer that go-ethereum mines, a FROST key a Taproot spend btcd accepts (DIR=... keeps it)
	$(GO) run ./test/demo/cmd/demo --bin bin $(if $(DIR),--dir $(DIR))

clean: ## remove build outputs
	rm -rf bin/
