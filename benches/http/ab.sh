#!/usr/bin/env bash
# Same-run A/B of HTTP servers on /plaintext, plain (wrk -t1 -c64) and pipelined 16 deep
# (wrk -t1 -c256 -s pipeline.lua), server pinned to CPU 0 with REACTORS=1, wrk to CPU 1,
# rounds interleaved. Prints one line per run: name, mode, requests/s, server CPU µs/request,
# and — for servers that print their counters at shutdown, as the examples do — task polls,
# pipe locks, submissions (SQEs) and kernel enters per request.
#
#   SERVERS="name:binary:ENV=v,ENV2=v ..." bash benches/http/ab.sh [rounds] [duration]
#
# e.g. both drivers of the same build:
#   SERVERS="uring:target/release/examples/hello:RINGHOP_DRIVER=io_uring \
#            epoll:target/release/examples/hello:RINGHOP_DRIVER=epoll" bash benches/http/ab.sh 3 5s
#
# SCHEME=https measures over TLS (the servers get TLS_CERT/TLS_KEY in their ENV list; wrk
# does not verify certificates); MODES="plain" skips the pipelined run.
set -u
cd "$(dirname "$0")/../.."
rounds=${1:-3}; dur=${2:-5s}
scheme=${SCHEME:-http}; modes=${MODES:-plain pipelined}
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # name bin envs mode
  local name=$1 bin=$2 envs=$3 mode=$4 port=18090
  local log; log=$(mktemp)
  env $envs ADDR=127.0.0.1:$port REACTORS=1 taskset -c 0 $bin >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -s -k -o /dev/null "$scheme://127.0.0.1:$port/plaintext" && break; sleep 0.05; done
  local before=$(cpu_ticks $pid) out
  if [ "$mode" = plain ]; then out=$(taskset -c 1 wrk -t1 -c64 -d$dur $scheme://127.0.0.1:$port/plaintext)
  else out=$(taskset -c 1 wrk -t1 -c256 -d$dur -s benches/http/pipeline.lua $scheme://127.0.0.1:$port/plaintext -- 16); fi
  local after=$(cpu_ticks $pid)
  kill -TERM $pid; wait $pid 2>/dev/null
  local req=$(echo "$out" | awk '/requests in/ {print $1}') rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  # The server's own counters, when it prints them at shutdown (the examples do).
  local shape; shape=$(grep -o "per request: .*" "$log" | sed 's/per request: //; s/ task polls,/ polls/; s/ pipe locks,/ locks/; s/ submissions,/ sqes/; s/ kernel enters/ enters/')
  rm -f "$log"
  awk -v n="$name" -v m="$mode" -v r="$rps" -v req="$req" -v t="$((after-before))" -v hz=$ticks -v shape="$shape" 'BEGIN{printf "%s %s %.0f %.3f %s\n", n, m, r, t/hz*1e6/req, shape}'
}
for r in $(seq $rounds); do
  for mode in $modes; do
    for s in $SERVERS; do IFS=: read name bin envs <<< "$s"; run "$name" "$bin" "${envs//,/ }" $mode; done
  done
done
