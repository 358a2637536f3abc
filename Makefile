# scstation — make run (the station on an embedded demo), make test (everything).

GO       ?= go
BIN      := bin/scstation
VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo devel)
LDFLAGS  := -X main.version=$(VERSION)

# Debian packages the project builds and tests with.
DEBS := libpcsclite-dev pkg-config pcscd vsmartcard-vpcd pcsc-tools opensc yubico-piv-tool \
        krb5-user krb5-kdc krb5-admin-server krb5-pkinit slapd ldap-utils openssl tmux \
        openssh-client

FUZZTIME ?= 10s

.PHONY: all deps build run demo test test-go bench fuzz lint clean

all: build

deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "scstation needs these Debian packages:"; \
			echo "  sudo apt-get install -y --no-install-recommends" $$missing; \
			exit 1; \
		fi; \
		echo "installing:" $$missing; \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi

build: deps
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/scstation

run: build
	./$(BIN) demo

demo: run

# Every test, the ones against real peers included. With CI=true a missing
# peer is a failure, never a skip. Card tests share one pcscd with four
# vpcd virtual readers, started (and stopped, also on failure) around go test.
# Then, in a phase of its own, card's TestPCSCDRestart starts, stops and
# restarts its own pcscd under a reader monitor and an attached virtual card;
# it cannot own pcscd when one ran before make test (a system pcscd): it then
# skips, or fails with CI=true.
WITH_PCSCD := scripts/with-pcscd.sh

test: deps
	$(GO) vet ./...
	$(WITH_PCSCD) $(GO) test -count=1 -timeout 15m ./...
	SCSTATION_PCSCD_RESTART=1 $(GO) test -count=1 -timeout 10m -v -run 'PCSCDRestart' ./card/

bench: deps
	$(WITH_PCSCD) $(GO) test -run '^$$' -bench . -benchmem ./...

# A short run of every fuzz target.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
