#!/usr/bin/env bash
# Pacing, fan-out and adaptive concurrency: "ccfpush send" (the real binary,
# real Azure SDK, TLS) against "ccfpush emulator" (per-DCR sliding-minute
# limits, --latency), loopback only, every step bounded by a timeout.
#
#   bench/pacing.sh pace       # --requests-per-minute at the DCR's quota, >= 3 min
#   bench/pacing.sh fanout     # one quota-limited DCR, then two (dcrs)
#   bench/pacing.sh adaptive   # 250 ms per request: fixed concurrencies, then auto
#   bench/pacing.sh all
#
#   RPM=120 MINUTES=4 bench/pacing.sh pace
#   RPM=120 SEND_RPM=240 bench/pacing.sh pace   # a budget twice the DCR's quota
#   RPM=60 REQUESTS=200 bench/pacing.sh fanout
#   LATENCY=250ms SWEEP="4 8 16 32 64" ROUNDS=80 bench/pacing.sh adaptive
#
# Each run prints one line; the JSON summaries of send and the emulator's
# stats stay in bench/out/pacing/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=bench/out
W=$OUT/pacing
BATCH=${BATCH:-10} # records per request
mkdir -p "$W"
go build -o "$OUT/ccfpush" ./cmd/ccfpush
BIN=$OUT/ccfpush

# Three DCRs with the same stream declaration (fan-out needs them alike):
# one for the single-DCR run, two others for the fan-out run, so that no run
# starts in the minute of another.
DCR_A=dcr-00000000000000000000000000000a0a
DCR_B=dcr-00000000000000000000000000000b0b
DCR_C=dcr-00000000000000000000000000000c0c
for id in $DCR_A $DCR_B $DCR_C; do
  cat >"$W/$id.json" <<EOF
{"name":"bench-$id","properties":{"immutableId":"$id",
 "streamDeclarations":{"Custom-Bench":{"columns":[
  {"name":"TimeGenerated","type":"datetime"},{"name":"RecordId","type":"string"},{"name":"Payload","type":"string"}]}},
 "dataFlows":[{"streams":["Custom-Bench"],"transformKql":"source","outputStream":"Custom-Bench_CL"}]}}
EOF
done

gen() { # gen N FILE: N records of ~200 bytes
  awk -v n="$1" 'BEGIN{p=sprintf("%0150d",0); for(i=1;i<=n;i++) printf "{\"TimeGenerated\":\"2026-12-06T00:00:00Z\",\"RecordId\":\"r%d\",\"Payload\":\"%s\"}\n", i, p}' >"$2"
}

EMU=""
stop_emu() { if [[ -n "$EMU" ]]; then kill "$EMU" 2>/dev/null || true; wait "$EMU" 2>/dev/null || true; EMU=""; fi; }
trap stop_emu EXIT

start_emu() { # start_emu NAME [emulator flags...]: a fresh emulator, its config in $CFG
  local dir=$W/$1; shift
  stop_emu
  rm -rf "$dir"; mkdir -p "$dir"
  "$BIN" emulator --addr 127.0.0.1:0 --data-dir "$dir/emu" --write-config "$dir/config.json" \
    --dcr "$W/$DCR_A.json" --dcr "$W/$DCR_B.json" --dcr "$W/$DCR_C.json" "$@" >"$dir/emu.out" 2>"$dir/emu.err" &
  EMU=$!
  for _ in $(seq 1 200); do [[ -s "$dir/config.json" ]] && break; sleep 0.05; done
  [[ -s "$dir/config.json" ]] || { echo "emulator did not start:" >&2; cat "$dir/emu.err" >&2; exit 1; }
  CFG=$dir/config.json
  DIR=$dir
}

# config_dcrs FILE ID...: point the config at these DCRs (one: dcr_immutable_id; more: dcrs).
config_dcrs() {
  python3 - "$@" <<'EOF'
import json, sys
path, ids = sys.argv[1], sys.argv[2:]
c = json.load(open(path))
c.pop("dcrs", None); c.pop("dcr_immutable_id", None)
if len(ids) == 1:
    c["dcr_immutable_id"] = ids[0]
else:
    c["dcrs"] = [{"dcr_immutable_id": i} for i in ids]
c["stream_name"] = "Custom-Bench"
json.dump(c, open(path, "w"), indent=2)
EOF
}

send() { # send NAME DATA [send flags...]: writes $DIR/NAME.json
  local name=$1 data=$2; shift 2
  timeout 900 "$BIN" --config "$CFG" send --data "$data" --batch-size "$BATCH" --output json \
    --dead-letter "$DIR/$name.failed.ndjson" "$@" >"$DIR/$name.json" 2>"$DIR/$name.err" || true
}

field() { # field FILE EXPR: EXPR of s, the JSON summary of send
  python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print($2)" "$1"
}

pace() {
  local rpm=${RPM:-120} minutes=${MINUTES:-4}
  local n=$((rpm * minutes * BATCH))
  gen "$n" "$W/pace.ndjson"
  start_emu pace --requests-per-minute "$rpm"
  config_dcrs "$CFG" $DCR_A
  # SEND_RPM above RPM: a budget set too high (or a DCR shared with
  # another process): the 429s and the slowing down after them.
  send pace "$W/pace.ndjson" --requests-per-minute "${SEND_RPM:-$rpm}"
  python3 - "$DIR/pace.json" "$rpm" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1])); rpm = int(sys.argv[2])
minutes = s["duration_ms"] / 60000
ok = s["status_codes"].get("204", 0); t = s["status_codes"].get("429", 0)
print(f"pace: quota {rpm} requests/min, {s['records_sent']}/{s['records_read']} records in {minutes:.2f} min: "
      f"{ok} accepted = {ok / minutes:.1f}/min = {100 * ok / minutes / rpm:.1f} % of the quota; "
      f"{t} of {s['requests']} requests answered 429 ({100 * t / max(s['requests'], 1):.2f} %); "
      f"waited {s['paced_wait_ms'] / 1000:.0f} s in all for budget")
EOF
}

fanout() {
  local rpm=${RPM:-60} reqs=${REQUESTS:-240}
  local n=$((reqs * BATCH))
  gen "$n" "$W/fanout.ndjson"
  start_emu fanout --requests-per-minute "$rpm"
  # Each DCR's budget in the configuration, as a user sharing it would set.
  config_dcrs "$CFG" $DCR_C
  python3 - "$CFG" "$rpm" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1])); c["requests_per_minute"] = sys.argv[2]
json.dump(c, open(sys.argv[1], "w"), indent=2)
EOF
  send one "$W/fanout.ndjson"
  config_dcrs "$CFG" $DCR_A $DCR_B
  send two "$W/fanout.ndjson"
  "$BIN" --config "$CFG" emulator stats >"$DIR/emu-stats.txt" 2>&1 || true
  python3 - "$DIR/one.json" "$DIR/two.json" "$rpm" <<'EOF'
import json, sys
one, two = (json.load(open(p)) for p in sys.argv[1:3]); rpm = int(sys.argv[3])
def line(name, s):
    t = s["status_codes"].get("429", 0)
    print(f"fanout {name}: {s['records_sent']} records in {s['duration_ms']/1000:.1f} s = {s['records_per_second']:.1f} records/s, "
          f"{s['requests']} requests, {t} answered 429")
line("1 DCR ", one); line("2 DCRs", two)
print(f"fanout: 2 DCRs / 1 DCR = {two['records_per_second'] / one['records_per_second']:.2f}x (quota {rpm} requests/min per DCR)")
EOF
  grep '  DCR ' "$DIR/emu-stats.txt" | sed 's/^ */fanout: emulator: /'
}

adaptive() {
  local lat=${LATENCY:-250ms} rounds=${ROUNDS:-80} sweep=${SWEEP:-"4 8 16 32 64"}
  local top=0
  for c in $sweep; do top=$((c > top ? c : top)); done
  for c in $sweep; do
    # rounds round trips' worth of requests at this concurrency: the same
    # time for each, enough for a steady rate. A fresh emulator for each
    # run: its store grows, and a bigger table is slower to write.
    gen $((c * rounds * BATCH)) "$W/adaptive-$c.ndjson"
    start_emu "adaptive-$c" --latency "$lat"
    config_dcrs "$CFG" $DCR_A
    send "fixed-$c" "$W/adaptive-$c.ndjson" --concurrency "$c"
    echo "adaptive: --concurrency $c: $(field "$DIR/fixed-$c.json" "f\"{s['records_sent']} records in {s['duration_ms']/1000:.1f} s = {s['records_per_second']:.0f} records/s\"")"
  done
  # No flag: the default is auto. The records of the largest fixed run:
  # the emulator's writes slow down as its table grows, so runs of more
  # records are slower at the same concurrency.
  start_emu adaptive-auto --latency "$lat"
  config_dcrs "$CFG" $DCR_A
  send auto "$W/adaptive-$top.ndjson"
  echo "adaptive: no --concurrency (auto): $(field "$DIR/auto.json" "f\"{s['records_sent']} records in {s['duration_ms']/1000:.1f} s = {s['records_per_second']:.0f} records/s, concurrency {s['concurrency_final']} at the end, {s['concurrency_max']} at most\"")"
  python3 - "$W" $sweep <<'EOF'
import json, sys
w = sys.argv[1]
best = max((json.load(open(f"{w}/adaptive-{c}/fixed-{c}.json"))["records_per_second"], c) for c in sys.argv[2:])
auto = json.load(open(f"{w}/adaptive-auto/auto.json"))["records_per_second"]
print(f"adaptive: auto / best fixed (--concurrency {best[1]}) = {auto / best[0]:.2f}")
EOF
}

case "${1:-all}" in
pace) pace ;;
fanout) fanout ;;
adaptive) adaptive ;;
all) pace; fanout; adaptive ;;
*) echo "usage: bench/pacing.sh pace|fanout|adaptive|all" >&2; exit 2 ;;
esac
