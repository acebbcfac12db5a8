# Haven — the two commands a newcomer needs are `make run` and `make test`.
GO        ?= go
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X haven.Version=$(VERSION)
DATA_DIR  ?= ./haven-data
FUZZTIME  ?= 15s
FUZZPKGS  ?= ./media ./hl7

# FIPSPKGS: what make test-fips runs. The embedded video media path (SFU,
# TURN) uses pion's DTLS-SRTP and STUN, outside Go's FIPS module, and bench
# measures rather than tests: both are left out (README, "FIPS 140-3 mode").
FIPSPKGS  ?= $(shell $(GO) list ./... | grep -v -e '^haven/video' -e '^haven/bench')
# FIPSSKIP: the browser tests, and web's tests of the call itself, which
# runs on that media path.
FIPSSKIP  ?= ^(TestBrowser.*|TestRevokedSessionIsCutFromTheCall|TestCallClosesForEveryoneWhenTheVisitClosesElsewhere|TestCallMediaFlowsThroughTheRelayHavenIssues|TestPatientBooksChecksInWaitsAndIsAdmitted|TestJoinRefusalsAreAudited)$$

.PHONY: run build test test-short test-fips bench lint vuln fuzz clean

## run: build and serve https://localhost:8443 with the demo practices
run: build
	./bin/haven serve --demo --data-dir $(DATA_DIR)

## build: build bin/haven
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/haven ./cmd/haven

## test: every test, with the race detector (PostgreSQL too when HAVEN_TEST_POSTGRES is set)
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 50m ./...

## test-fips: the suite with Go's FIPS 140-3 module enforced: built with GOFIPS140=latest (FIPS mode
## on) and run with GODEBUG=fips140=only (every non-approved algorithm fails). SQLite only, no -race,
## no browser tests: it proves the cryptography, which make test already runs on both databases and in
## the browser; FIPSPKGS leaves out the video media path and bench
test-fips:
	GOFIPS140=latest GODEBUG=fips140=only HAVEN_TEST_SQLITE_ONLY=1 \
		$(GO) test -count=1 -timeout 30m -skip '$(FIPSSKIP)' $(FIPSPKGS)

## test-short: the quick subset, for the edit-test loop
test-short:
	$(GO) test -short -count=1 ./...

## bench: load and micro benchmarks with same-run baselines (see bench/README.md)
bench:
	$(GO) run ./bench/run

## fuzz: every fuzz target of FUZZPKGS, each for FUZZTIME (go test -fuzz takes one target at a time);
## a failing input is kept under the package's testdata/fuzz and fails the run
fuzz:
	@set -e; for pkg in $(FUZZPKGS); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$target for $(FUZZTIME)"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 10s $$pkg; \
		done; \
	done

## lint: formatting, vet, a tidy go.mod, the package boundaries and package docs
lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) mod tidy -diff
	$(GO) test -count=1 -run '^(TestPackageBoundaries|TestOnlyTheWiringHoldsTheGate|TestEveryPackageSaysWhatItOwns)$$' .

## vuln: known vulnerabilities reachable from Haven, from the offline database beside the project
vuln:
	$(GO) run golang.org/x/vuln/cmd/govulncheck@v1.8.0 -db file://$(abspath ../shared/vulndb) ./...

clean:
	rm -rf bin
