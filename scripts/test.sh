#!/usr/bin/env bash
# Runs every test of ccfpush: vet, then the race-enabled test suite (unit,
# integration against the emulator over TLS, and browser tests in headless
# Chromium). Installs Debian's chromium when it is missing, so a clean machine
# needs nothing installed by hand.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  echo "test.sh: installing chromium for the browser tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq chromium >/dev/null
fi

go vet ./...
go test -race -timeout 12m ./...
