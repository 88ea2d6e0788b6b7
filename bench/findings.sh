#!/usr/bin/env bash
# Decodes large synthetic scanner reports with the decoders of
# internal/finding (bench/findings decode, the decoder ccfpush send --from
# uses) and measures wall time, CPU and peak RSS with /usr/bin/time -v: the
# RSS must not grow with the report. Reports are generated once into
# bench/out (git-ignored). Every step is bounded by a timeout.
#
#   bench/findings.sh               # 20 MB and 200 MB, Trivy and Grype, file and pipe
#   SIZES="1GB" bench/findings.sh   # other sizes
#   SEND=0 bench/findings.sh        # decode only (by default each Trivy report
#                                   # is also sent, whole, by ccfpush send to
#                                   # bench/sink, under /usr/bin/time -v)
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=bench/out
SIZES=${SIZES:-"20MB 200MB"}
mkdir -p "$OUT"

SEND=${SEND:-1}

echo "== build" >&2
go build -o "$OUT/findings" ./bench/findings
if [[ $SEND == 1 ]]; then
  go build -o "$OUT/ccfpush" ./cmd/ccfpush
  go build -o "$OUT/sink" ./bench/sink
fi

. bench/lib.sh
trap stop_sink EXIT

SENDS=()
send() { # send NAME FILE: the whole path (decode, pack, gzip, upload over TLS)
  local name=$1 file=$2 dir="$OUT/sink-findings"
  start_sink "$dir"
  local tv="$dir/time-send.txt" js="$dir/send.json" rc=0
  timeout 600 /usr/bin/time -v -o "$tv" "$OUT/ccfpush" --config "$dir/connector_config.json" \
    send --from trivy --data "$file" --dead-letter "$dir/failed.ndjson" --output json >"$js" || rc=$?
  stop_sink
  if [[ $rc -ne 0 ]]; then
    echo "ccfpush send exited $rc for $name:" >&2; cat "$js" >&2; exit 1
  fi
  local wall user sys rss sent reqs
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tv")
  user=$(awk -F': ' '/User time/ {print $2}' "$tv")
  sys=$(awk -F': ' '/System time/ {print $2}' "$tv")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv")
  sent=$(grep -o '"records_sent":[0-9]*' "$js" | cut -d: -f2)
  reqs=$(grep -o '"requests":[0-9]*' "$js" | cut -d: -f2)
  SENDS+=("$(printf '%-18s %6s %9s %8s %8s %6s %6s %8.1f' "$name" "$(du -m "$file" | cut -f1)" "$sent" "$reqs" "$wall" "$user" "$sys" "$(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')")")
}

RESULTS=()
run() { # run NAME FORMAT FILE pipe|file
  local name=$1 format=$2 file=$3 mode=$4
  local tv="$OUT/time-findings-$name.txt" js="$OUT/findings-$name.json" rc=0
  if [[ $mode == pipe ]]; then
    timeout 600 /usr/bin/time -v -o "$tv" sh -c "cat '$file' | '$OUT/findings' decode -from '$format' -" >"$js" || rc=$?
  else
    timeout 600 /usr/bin/time -v -o "$tv" "$OUT/findings" decode -from "$format" "$file" >"$js" || rc=$?
  fi
  if [[ $rc -ne 0 ]]; then
    echo "decode exited $rc for $name" >&2; cat "$js" >&2; exit 1
  fi
  local wall user sys rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tv")
  user=$(awk -F': ' '/User time/ {print $2}' "$tv")
  sys=$(awk -F': ' '/System time/ {print $2}' "$tv")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv")
  local recs mbps heap
  recs=$(grep -o '"records":[0-9]*' "$js" | cut -d: -f2)
  mbps=$(grep -o '"mb_per_s":[0-9.]*' "$js" | cut -d: -f2)
  heap=$(grep -o '"peak_live_heap_mb":[0-9.]*' "$js" | cut -d: -f2)
  RESULTS+=("$(printf '%-18s %6s %9s %8s %7.1f %6s %6s %8s %8.1f %8.1f' "$name" "$(du -m "$file" | cut -f1)" "$recs" \
    "$wall" "$mbps" "$user" "$sys" "$(awk -v u="$user" -v s="$sys" 'BEGIN{printf "%.2f", u+s}')" "$heap" "$(awk -v k="$rss" 'BEGIN{printf "%.1f", k/1024}')")")
}

for size in $SIZES; do
  for format in trivy grype; do
    file="$OUT/$format-$size.json"
    if [[ ! -s "$file" ]]; then
      echo "== generate $file" >&2
      timeout 600 "$OUT/findings" gen -format "$format" -size "$size" -o "$file" >&2
    fi
    run "$format-$size-file" "$format" "$file" file
    run "$format-$size-pipe" "$format" "$file" pipe
    if [[ $SEND == 1 && $format == trivy ]]; then
      send "send-trivy-$size" "$file"
    fi
  done
done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GB RAM", $2/1048576}' /proc/meminfo), go $(go env GOVERSION)"
printf '%-18s %6s %9s %8s %7s %6s %6s %8s %8s %8s\n' run MB findings wall "MB/s" user sys "CPU s" "heap MB" "RSS MB"
printf '%s\n' "${RESULTS[@]}"
if [[ $SEND == 1 ]]; then
  echo
  printf '%-18s %6s %9s %8s %8s %6s %6s %8s\n' send MB sent requests wall user sys "RSS MB"
  printf '%s\n' "${SENDS[@]}"
fi
