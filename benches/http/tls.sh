#!/usr/bin/env bash
# HTTPS and axum, same run, server pinned to CPU 0 (REACTORS=1), clients on CPU 1:
#  1. full TLS handshakes per second (no resumption: `openssl s_time -new`, 4 clients at
#     once), ECDSA P-256 and RSA-2048 certificates, hyper_app on ringhop vs on tokio with
#     tokio-rustls (the same rustls configuration), with server CPU µs per handshake;
#  2. HTTPS /plaintext, plain and pipelined 16 deep (wrk over TLS, via ab.sh);
#  3. the axum app: ringhop (tokio-compat) vs axum::serve on a current_thread runtime.
#
#   bash benches/http/tls.sh [rounds] [duration]
# (build first: cargo build --release --examples)
set -u
cd "$(dirname "$0")/../.."
rounds=${1:-3}; dur=${2:-5}
bin=target/release/examples
dir=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/ec.key" \
  -out "$dir/ec.pem" -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/rsa.key" -out "$dir/rsa.pem" \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost 2>/dev/null
ticks=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

handshakes() { # name transport cert
  local name=$1 transport=$2 cert=$3 port=18095
  TRANSPORT=$transport TLS_CERT=$dir/$cert.pem TLS_KEY=$dir/$cert.key ADDR=127.0.0.1:$port \
    REACTORS=1 taskset -c 0 $bin/hyper_app >/dev/null 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -s -k -o /dev/null "https://127.0.0.1:$port/plaintext" && break; sleep 0.05; done
  local before; before=$(cpu_ticks $pid)
  local outs=()
  for c in 1 2 3 4; do
    outs+=("$dir/s_time.$c")
    taskset -c 1 openssl s_time -connect 127.0.0.1:$port -new -time "$dur" >"$dir/s_time.$c" 2>&1 &
  done
  wait $(jobs -p | grep -v "^$pid$") 2>/dev/null
  local after; after=$(cpu_ticks $pid)
  kill -TERM $pid; wait $pid 2>/dev/null
  # "N connections in T real seconds": sum of N over the clients, per wall second.
  cat "${outs[@]}" | awk -v n="$name" -v c="$cert" -v d="$dur" -v t="$((after-before))" -v hz=$ticks \
    '/connections in .* real seconds/ {conns += $1} END {printf "%s %s handshakes/s %.0f, server CPU µs/handshake %.1f\n", n, c, conns/d, t/hz*1e6/conns}'
}

echo "# full TLS handshakes (openssl s_time -new, 4 clients), ${dur}s each"
for r in $(seq $rounds); do
  for cert in ec rsa; do
    handshakes hyper-ringhop ringhop $cert
    handshakes hyper-tokio tokio $cert
  done
done

echo "# HTTPS /plaintext (wrk over TLS): name mode req/s cpu-µs/req [shape]"
SCHEME=https SERVERS="hyper-ringhop:$bin/hyper_app:TLS_CERT=$dir/ec.pem,TLS_KEY=$dir/ec.key \
hyper-tokio:$bin/hyper_app:TRANSPORT=tokio,TLS_CERT=$dir/ec.pem,TLS_KEY=$dir/ec.key" \
  bash benches/http/ab.sh "$rounds" "${dur}s"

echo "# axum /plaintext: name mode req/s cpu-µs/req [shape]"
SERVERS="axum-ringhop:$bin/axum_app: axum-serve:$bin/axum_app:TRANSPORT=tokio" \
  bash benches/http/ab.sh "$rounds" "${dur}s"
rm -rf "$dir"
