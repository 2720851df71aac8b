#!/usr/bin/env bash
# Quick side-by-side: ringhop's native server (examples/hello) vs hyper on a tokio
# current_thread runtime (examples/hyper_tokio), both with one reactor/thread pinned to core
# 0, wrk pinned to core 1, run back to back. Prints requests/s and server CPU µs per request
# (user+sys of the server process over the run / requests served).
#
#   bash benches/http/quick.sh [connections] [duration] [path]
set -euo pipefail
cd "$(dirname "$0")/../.."
conns=${1:-64}
duration=${2:-10s}
path=${3:-/plaintext}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --example hello --example hyper_tokio
ticks=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() {
    local name=$1 bin=$2 port=$3
    ADDR=127.0.0.1:$port REACTORS=1 taskset -c 0 "target/release/examples/$bin" >/dev/null &
    local pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port$path" && break; sleep 0.05; done
    local before out after requests rps
    before=$(cpu_ticks "$pid")
    out=$(taskset -c 1 wrk -t1 -c"$conns" -d"$duration" "http://127.0.0.1:$port$path")
    after=$(cpu_ticks "$pid")
    kill -TERM "$pid"; wait "$pid" || true
    requests=$(echo "$out" | awk '/requests in/ {print $1}')
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    awk -v n="$name" -v r="$rps" -v req="$requests" -v t="$((after - before))" -v hz="$ticks" \
        'BEGIN { printf "%-22s %12.0f req/s %8.2f us CPU/request\n", n, r, t / hz * 1e6 / req }'
}

echo "wrk -t1 -c$conns -d$duration $path (server: taskset -c 0, wrk: taskset -c 1)"
run "ringhop native" hello 18080
run "hyper on tokio (1 thr)" hyper_tokio 18081
