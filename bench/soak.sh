#!/usr/bin/env bash
# Soak benchmark of the webhook daemon, loopback only: "ccfpush serve" (the
# real binary, its durable spool, the real Azure SDK) against the emulator
# (in-process in bench/soak), posted to by concurrent clients for a bounded
# time. Reports webhook intake (records/s, requests/s, POST -> 202 latency)
# and end-to-end latency (POST -> row stored in the emulator), and checks
# that every acknowledged record arrived. See bench/README.md.
#
#   bench/soak.sh                       # 20 s, 8 clients x 50 records/request
#   DURATION=10s CLIENTS=4 BATCH=100 bench/soak.sh
#   LATENCY=40ms FAIL_RATE=503=0.05 bench/soak.sh   # a slower, flaky service
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=bench/out
DURATION=${DURATION:-20s}
CLIENTS=${CLIENTS:-8}
BATCH=${BATCH:-50}
CONCURRENCY=${CONCURRENCY:-4}
MAX_RECORDS=${MAX_RECORDS:-1000000}
LATENCY=${LATENCY:-0s}
FAIL_RATE=${FAIL_RATE:-}
mkdir -p "$OUT"

echo "== build" >&2
go build -o "$OUT/ccfpush" ./cmd/ccfpush
go build -o "$OUT/soakload" ./bench/soak

echo "== soak: $DURATION, $CLIENTS clients x $BATCH records/request" >&2
# The load is bounded by -duration and -max-records, the drain by
# -drain-timeout; timeout(1) bounds the whole run besides.
timeout 300 "$OUT/soakload" -ccfpush "$OUT/ccfpush" -dir "$OUT/soak-run" \
  -duration "$DURATION" -clients "$CLIENTS" -batch "$BATCH" -concurrency "$CONCURRENCY" \
  -max-records "$MAX_RECORDS" -latency "$LATENCY" -fail-rate "$FAIL_RATE" -drain-timeout 120s
