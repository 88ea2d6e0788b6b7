# ccfpush build helpers. `make test` runs the same command as CI.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/ccfpush/ccfpush/internal/cli.Version=$(VERSION)

.PHONY: build test install bench clean

build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o ccfpush ./cmd/ccfpush

install:
	CGO_ENABLED=0 go install -trimpath -ldflags "$(LDFLAGS)" ./cmd/ccfpush

test:
	./scripts/test.sh

bench:
	./bench/run.sh

clean:
	rm -f ccfpush
