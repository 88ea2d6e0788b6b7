#!/usr/bin/env bash
# Benchmarks "ccfpush send" against a local TLS sink (bench/sink) that
# answers 204 at once: wall time, CPU (user+sys) and peak RSS measured with
# /usr/bin/time -v. Loopback only; every step is bounded by a timeout.
#
#   bench/run.sh            # all scenarios
#   CONCURRENCY=8 bench/run.sh
#
# Scenarios (targets for a 2-core machine, see bench/README.md):
#   100k  100,000 records          < 1 s wall, < 1 CPU-second
#   1m    1,000,000 records        peak RSS < 64 MB
#   lat   20,000 records, 40 ms per request at the sink   < 0.5 s wall
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=bench/out
CONCURRENCY=${CONCURRENCY:-4}
FORMAT=${FORMAT:-ndjson}
mkdir -p "$OUT"

echo "== build" >&2
go build -o "$OUT/ccfpush" ./cmd/ccfpush
go build -o "$OUT/sink" ./bench/sink

gen() { # gen N FILE
  if [[ ! -s "$2" ]]; then
    timeout 300 "$OUT/sink" gen -n "$1" -format "$FORMAT" -o "$2" >&2
  fi
}
echo "== data ($FORMAT)" >&2
gen 20000 "$OUT/data-20k.$FORMAT"
gen 100000 "$OUT/data-100k.$FORMAT"
gen 1000000 "$OUT/data-1m.$FORMAT"

. bench/lib.sh
trap stop_sink EXIT

RESULTS=()
run() { # run NAME DATA SINKDIR [send flags...]
  local name=$1 data=$2 dir=$3; shift 3
  local tv="$dir/time-$name.txt" js="$dir/stats-$name.json"
  local rc=0
  timeout 300 /usr/bin/time -v -o "$tv" "$OUT/ccfpush" --config "$dir/connector_config.json" \
    send --data "$data" --dead-letter "$dir/$name.failed.ndjson" --concurrency "$CONCURRENCY" --output json "$@" >"$js" || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "ccfpush send exited $rc for $name:" >&2; cat "$js" >&2; exit 1
  fi
  local wall user sys rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tv")
  user=$(awk -F': ' '/User time/ {print $2}' "$tv")
  sys=$(awk -F': ' '/System time/ {print $2}' "$tv")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv")
  local sent reqs dur mbraw
  sent=$(grep -o '"records_sent":[0-9]*' "$js" | cut -d: -f2)
  reqs=$(grep -o '"requests":[0-9]*' "$js" | cut -d: -f2)
  dur=$(grep -o '"duration_ms":[0-9]*' "$js" | cut -d: -f2)
  mbraw=$(grep -o '"bytes_raw":[0-9]*' "$js" | cut -d: -f2)
  RESULTS+=("$(printf '%-6s %9s %8s %7s %6s %6s %8s %9s %9s' "$name" "$sent" "$reqs" \
    "$(awk -v b="$mbraw" 'BEGIN{printf "%.1f", b/1e6}')" "$user" "$sys" \
    "$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')" "$wall" "$(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')")")
}

echo "== 100k and 1M records, sink answers at once" >&2
start_sink "$OUT/sink-fast"
run 100k "$OUT/data-100k.$FORMAT" "$OUT/sink-fast"
run 1m "$OUT/data-1m.$FORMAT" "$OUT/sink-fast"
stop_sink
cat "$OUT/sink-fast/sink.out" >&2

echo "== 20k records, 40 ms latency per request" >&2
start_sink "$OUT/sink-lat" -latency 40ms
run lat "$OUT/data-20k.$FORMAT" "$OUT/sink-lat"
stop_sink
cat "$OUT/sink-lat/sink.out" >&2

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), go $(go env GOVERSION), concurrency $CONCURRENCY, input $FORMAT"
printf '%-6s %9s %8s %7s %6s %6s %8s %9s %9s\n' run records requests "MB raw" user sys "CPU s" wall "RSS MB"
printf '%s\n' "${RESULTS[@]}"
