# Shared by the bench scripts (sourced, not run): starting and stopping
# bench/sink, the local TLS stand-in for a DCE. Needs OUT (where the sink
# binary was built); the caller sets `trap stop_sink EXIT`.

SINK_PID=""

stop_sink() {
  if [[ -n "$SINK_PID" ]]; then
    kill "$SINK_PID" 2>/dev/null || true
    wait "$SINK_PID" 2>/dev/null || true
    SINK_PID=""
  fi
}

# start_sink DIR [sink flags...]: a fresh DIR; returns once the sink wrote
# DIR/connector_config.json (its address, CA and a test secret).
start_sink() {
  local dir=$1; shift
  rm -rf "$dir"; mkdir -p "$dir"
  "$OUT/sink" -dir "$dir" "$@" >"$dir/sink.out" 2>"$dir/sink.err" &
  SINK_PID=$!
  for _ in $(seq 1 100); do
    [[ -s "$dir/connector_config.json" ]] && return 0
    sleep 0.05
  done
  echo "sink did not start:" >&2; cat "$dir/sink.err" >&2; exit 1
}
