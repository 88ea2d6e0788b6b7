#!/usr/bin/env bash
# Benchmarks of the daemons against the local TLS sink (bench/sink), both
# loopback only and bounded in time:
#
#   serve: 20 clients POST a 10 MB NDJSON body each, all at once; the
#          daemon's peak RSS (VmHWM) and the time until all are answered.
#   watch: 2,000 small files (5 records each) dropped into the inbox; the
#          requests the sink received against the files.
#
#   bench/daemons.sh
#   BIN=/path/to/other/ccfpush bench/daemons.sh   # compare another build
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=bench/out
mkdir -p "$OUT"
go build -o "$OUT/sink" ./bench/sink
if [[ -z "${BIN:-}" ]]; then
  go build -o "$OUT/ccfpush" ./cmd/ccfpush
  BIN=$OUT/ccfpush
fi
W=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT

"$OUT/sink" -dir "$W/sink" >"$W/sink.out" 2>"$W/sink.err" &
SINK=$!; PIDS+=("$SINK")
for _ in $(seq 1 100); do [[ -s "$W/sink/connector_config.json" ]] && break; sleep 0.05; done
CFG=$W/sink/connector_config.json

# ---- serve: 20 concurrent 10 MB bodies
head -c 32 /dev/urandom | base64 >"$W/token"; chmod 600 "$W/token"
timeout 300 "$OUT/sink" gen -n 13000 -format ndjson -o "$W/body.ndjson" >/dev/null 2>&1
"$BIN" --config "$CFG" --log-format json serve --addr 127.0.0.1:0 --token-file "$W/token" \
  --spool-dir "$W/spool-serve" --spool-max-bytes 2GiB 2>"$W/serve.log" &
SERVE=$!; PIDS+=("$SERVE")
for _ in $(seq 1 200); do grep -q '"msg":"listening"' "$W/serve.log" && break; sleep 0.05; done
ADDR=$(grep -o '"addr":"[^"]*"' "$W/serve.log" | tail -1 | cut -d'"' -f4)
BODY_MB=$(awk -v b="$(stat -c %s "$W/body.ndjson")" 'BEGIN{printf "%.1f", b/1e6}')
START=$(date +%s.%N)
for i in $(seq 1 20); do
  curl -s -o "$W/resp.$i" -w '%{http_code}\n' --max-time 120 -H "Authorization: Bearer $(cat "$W/token")" \
    -H 'Content-Type: application/x-ndjson' --data-binary "@$W/body.ndjson" "http://$ADDR/v1/records" >"$W/code.$i" &
done
wait $(jobs -p | grep -v -e "$SINK" -e "$SERVE") 2>/dev/null || true
END=$(date +%s.%N)
OK=$(cat "$W"/code.* | grep -c '^202$' || true)
HWM=$(awk '/VmHWM/ {print $2}' "/proc/$SERVE/status")
kill "$SERVE"; wait "$SERVE" 2>/dev/null || true
printf 'serve: 20 x %s MB bodies: %s answered 202 in %.1f s; peak RSS %.0f MB\n' "$BODY_MB" "$OK" \
  "$(awk -v a="$START" -v b="$END" 'BEGIN{print b-a}')" "$(awk -v k="$HWM" 'BEGIN{print k/1024}')"

# ---- watch: 2,000 small files
kill "$SINK"; wait "$SINK" 2>/dev/null || true
"$OUT/sink" -dir "$W/sink2" -count >"$W/sink2.out" 2>"$W/sink2.err" &
SINK=$!; PIDS+=("$SINK")
for _ in $(seq 1 100); do [[ -s "$W/sink2/connector_config.json" ]] && break; sleep 0.05; done
mkdir -p "$W/inbox" "$W/stage"
for i in $(seq 1 2000); do
  printf '{"FindingId":"f%d-a"}\n{"FindingId":"f%d-b"}\n{"FindingId":"f%d-c"}\n{"FindingId":"f%d-d"}\n{"FindingId":"f%d-e"}\n' $i $i $i $i $i >"$W/stage/f$i.ndjson"
done
touch -d '1 minute ago' "$W"/stage/*
"$BIN" --config "$W/sink2/connector_config.json" --log-format json watch "$W/inbox" --spool-dir "$W/spool-watch" \
  --settle 200ms 2>"$W/watch.log" &
WATCH=$!; PIDS+=("$WATCH")
for _ in $(seq 1 200); do grep -q '"msg":"watching"' "$W/watch.log" && break; sleep 0.05; done
START=$(date +%s.%N)
mv "$W"/stage/* "$W/inbox/"
for _ in $(seq 1 1200); do
  [[ $(find "$W/inbox/done" -type f | wc -l) -ge 2000 ]] && break; sleep 0.1
done
sleep 2 # the last lingering batch
END=$(date +%s.%N)
kill "$WATCH"; wait "$WATCH" 2>/dev/null || true
kill "$SINK"; wait "$SINK" 2>/dev/null || true
printf 'watch: 2000 files (10000 records) in %.1f s: sink %s\n' "$(awk -v a="$START" -v b="$END" 'BEGIN{print b-a}')" "$(cat "$W/sink2.out")"
