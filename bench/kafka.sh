#!/usr/bin/env bash
# Benchmarks "ccfpush consume": records/s for one consumer and for two in
# one group, through the real binary and the real Azure SDK to bench/sink,
# from an in-process Kafka (kfake) run by bench/kafka. Loopback only; every
# step is bounded by a timeout.
#
#   bench/kafka.sh                          # 200,000 one-record messages, 6 partitions
#   LATENCY=40ms bench/kafka.sh             # the sink answers after 40 ms, like Azure
#   MESSAGES=50000 PER_MESSAGE=10 bench/kafka.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=bench/out
MESSAGES=${MESSAGES:-200000}
PER_MESSAGE=${PER_MESSAGE:-1}
PARTITIONS=${PARTITIONS:-6}
CONSUMERS=${CONSUMERS:-1,2}
LATENCY=${LATENCY:-0s}
ARGS=${ARGS:---commit-interval 100ms}
mkdir -p "$OUT"

echo "== build" >&2
go build -o "$OUT/ccfpush" ./cmd/ccfpush
go build -o "$OUT/sink" ./bench/sink
go build -o "$OUT/kafka" ./bench/kafka

SINK_DIR="$OUT/kafka-sink"
rm -rf "$SINK_DIR"; mkdir -p "$SINK_DIR"
"$OUT/sink" -dir "$SINK_DIR" -latency "$LATENCY" >"$SINK_DIR/sink.out" 2>"$SINK_DIR/sink.err" &
SINK_PID=$!
trap 'kill $SINK_PID 2>/dev/null || true; wait $SINK_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  [[ -s "$SINK_DIR/connector_config.json" ]] && break
  sleep 0.05
done
[[ -s "$SINK_DIR/connector_config.json" ]] || { echo "sink did not start:" >&2; cat "$SINK_DIR/sink.err" >&2; exit 1; }

echo "== consume: $MESSAGES messages x $PER_MESSAGE records, $PARTITIONS partitions, sink latency $LATENCY" >&2
timeout 900 "$OUT/kafka" -ccfpush "$OUT/ccfpush" -config "$SINK_DIR/connector_config.json" -dir "$OUT/kafka-run" \
  -messages "$MESSAGES" -per-message "$PER_MESSAGE" -partitions "$PARTITIONS" -consumers "$CONSUMERS" -args "$ARGS"
