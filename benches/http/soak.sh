#!/usr/bin/env bash
# Soak: DURATION (default 60 s) of mixed load on the native server (examples/hello, one
# reactor, CPU 0): wrk on /plaintext plus soak_client.py looping over pipelined, chunked,
# aborted (reset mid-body and mid-response), slow and keep-alive requests (CPU 1). Prints the
# server's RSS after warm-up and at the end, requests served, client errors, the fd count
# before and after, and the server's counters at shutdown.
#
#   bash benches/http/soak.sh [duration-seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
duration=${1:-60}
port=18099
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --example hello
log=$(mktemp)
ADDR=127.0.0.1:$port REACTORS=1 taskset -c 0 target/release/examples/hello >"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
fds() { ls "/proc/$pid/fd" | wc -l; }
fds_before=$(fds)
taskset -c 1 wrk -t1 -c64 -d"${duration}s" "http://127.0.0.1:$port/plaintext" >"$log.wrk" &
wrk_pid=$!
taskset -c 1 python3 benches/http/soak_client.py "127.0.0.1:$port" "$duration" >"$log.client" &
client_pid=$!
warmup=$((duration / 6))
sleep "$warmup"
rss_warm=$(rss)
wait "$wrk_pid" "$client_pid"
rss_end=$(rss)
# Let lingering connections close (linger: 2 s).
sleep 3
fds_after=$(fds)
kill -TERM "$pid"
wait "$pid" || true
echo "soak ${duration}s: RSS after ${warmup}s warm-up ${rss_warm} KiB, at the end ${rss_end} KiB" \
    "($(awk -v a="$rss_warm" -v b="$rss_end" 'BEGIN {printf "%+.1f%%", (b - a) * 100 / a}'))"
echo "wrk: $(awk '/requests in/ {print $1, "requests"} /Non-2xx|Socket errors/ {print}' "$log.wrk" | paste -sd' ')"
echo "mixed client: $(cat "$log.client")"
echo "server fds: ${fds_before} before, ${fds_after} after"
echo "server at shutdown: $(grep 'connections open' "$log")"
rm -f "$log" "$log.wrk" "$log.client"
