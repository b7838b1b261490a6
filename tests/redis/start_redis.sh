#!/usr/bin/env bash
# Starts a private redis-server for tandem's Redis tests: loopback only, a free port (tried at
# random, verified to be ours by process id), no persistence. Writes <dir>/port and <dir>/pid.
#   start_redis.sh <redis-server> <redis-cli> <state dir>
set -euo pipefail
server="$1" cli="$2" dir="$3"
mkdir -p "$dir"
rm -f "$dir/port" "$dir/pid"
if [[ -f "$dir/pid.running" ]]; then  # a previous run's server that was never stopped
  kill -9 "$(cat "$dir/pid.running")" 2>/dev/null || true
  rm -f "$dir/pid.running"
fi
for attempt in $(seq 1 20); do
  port=$((20000 + RANDOM % 40000))
  rm -f "$dir/redis.pid"
  "$server" --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
            --pidfile "$dir/redis.pid" --dir "$dir" --logfile "$dir/redis.log" >/dev/null || continue
  for _ in $(seq 1 100); do   # up to 5 s for the daemon to bind (or give up on the port)
    if [[ -s "$dir/redis.pid" ]] &&
       id=$("$cli" -p "$port" info server 2>/dev/null | tr -d '\r' | sed -n 's/^process_id://p') &&
       [[ "$id" == "$(cat "$dir/redis.pid")" ]]; then
      echo "$port" > "$dir/port"
      cp "$dir/redis.pid" "$dir/pid"
      cp "$dir/redis.pid" "$dir/pid.running"
      echo "private redis-server pid $id on 127.0.0.1:$port"
      exit 0
    fi
    if [[ -s "$dir/redis.pid" ]] && ! kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
      break  # it died: the port was taken
    fi
    sleep 0.05
  done
  echo "port $port did not work (attempt $attempt), trying another" >&2
  [[ -s "$dir/redis.pid" ]] && kill -9 "$(cat "$dir/redis.pid")" 2>/dev/null || true
done
echo "could not start a private redis-server; log:" >&2
cat "$dir/redis.log" >&2 || true
exit 1
