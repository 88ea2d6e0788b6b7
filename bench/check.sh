#!/usr/bin/env bash
# ccfpush check against ccfpush send --dry-run on the same file: both read and
# decode every record; send --dry-run packs and gzips them, check puts them
# through the data collection rule (decode into maps, the rule's coercions
# and transform). The target: check within 2x of send --dry-run in wall time.
# The data (generated findings, 200 MB by default) and its rule (inferred by
# ccfpush schema dcr) are made once into bench/out (git-ignored); each
# command runs RUNS times, measured with /usr/bin/time -v, bounded by a
# timeout.
#
#   bench/check.sh                    # 250,000 findings (~200 MB), 3 runs
#   RECORDS=1000000 RUNS=1 bench/check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=bench/out
RECORDS=${RECORDS:-250000}
RUNS=${RUNS:-3}
mkdir -p "$OUT"

echo "== build" >&2
go build -o "$OUT/ccfpush" ./cmd/ccfpush
data="$OUT/check-$RECORDS.ndjson"
rule="$OUT/check-$RECORDS.dcr.json"
if [[ ! -s "$data" ]]; then
  echo "== generate $data" >&2
  timeout 600 "$OUT/ccfpush" generate -n "$RECORDS" --seed 1 --format ndjson -o "$data" >&2
fi
if [[ ! -s "$rule" ]]; then
  timeout 600 "$OUT/ccfpush" schema dcr --data "$data" --sample 10000 -o "$rule" 2>/dev/null
fi

RESULTS=()
declare -A WALL
run() { # run NAME ARGS...
  local name=$1; shift
  local tv="$OUT/time-check-$name.txt" rc=0
  timeout 600 /usr/bin/time -v -o "$tv" "$OUT/ccfpush" "$@" >/dev/null 2>"$OUT/check-$name.err" || rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "$name exited $rc" >&2; cat "$OUT/check-$name.err" >&2; exit 1
  fi
  local wall user sys rss secs
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tv")
  user=$(awk -F': ' '/User time/ {print $2}' "$tv")
  sys=$(awk -F': ' '/System time/ {print $2}' "$tv")
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tv")
  secs=$(awk -v w="$wall" 'BEGIN{n=split(w,p,":"); s=0; for(i=1;i<=n;i++) s=s*60+p[i]; print s}')
  WALL[$name]="${WALL[$name]:-} $secs"
  RESULTS+=("$(printf '%-10s %8.2f %6s %6s %8.2f %8.1f' "$name" "$secs" "$user" "$sys" \
    "$(awk -v u="$user" -v s="$sys" 'BEGIN{print u+s}')" "$(awk -v k="$rss" 'BEGIN{print k/1024}')")")
}

for i in $(seq "$RUNS"); do
  run dry-run send --dry-run --data "$data"
  run check check --data "$data" --dcr "$rule"
done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GB RAM", $2/1048576}' /proc/meminfo), go $(go env GOVERSION); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "data: $RECORDS findings, $(du -m "$data" | cut -f1) MB"
printf '%-10s %8s %6s %6s %8s %8s\n' run "wall s" user sys "CPU s" "RSS MB"
printf '%s\n' "${RESULTS[@]}"
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
d=$(echo "${WALL[dry-run]}" | median); c=$(echo "${WALL[check]}" | median)
echo "median wall: send --dry-run $d s, check $c s: check/dry-run = $(awk -v c="$c" -v d="$d" 'BEGIN{printf "%.2f", c/d}')"
