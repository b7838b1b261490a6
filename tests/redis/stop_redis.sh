#!/usr/bin/env bash
# Stops the private redis-server that start_redis.sh started (by its pid), waiting for it.
set -euo pipefail
dir="$1"
[[ -f "$dir/pid" ]] || { echo "no private redis-server recorded in $dir"; exit 0; }
pid="$(cat "$dir/pid")"
kill "$pid" 2>/dev/null || true
for _ in $(seq 1 100); do
  kill -0 "$pid" 2>/dev/null || { rm -f "$dir/pid" "$dir/pid.running" "$dir/port"; echo "stopped $pid"; exit 0; }
  sleep 0.05
done
kill -9 "$pid" 2>/dev/null || true
rm -f "$dir/pid" "$dir/pid.running" "$dir/port"
echo "killed $pid (did not stop within 5 s)"
