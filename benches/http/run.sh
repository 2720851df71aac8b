#!/usr/bin/env bash
# HTTP load, side by side, in one run: the ceiling server, ringhop's native server and hyper
# on ringhop (each on both drivers), hyper on tokio (the same service and hyper settings),
# and two peers from other Rust stacks (monoio with a hand-written httparse loop,
# may_minihttp; benches/peers, a separate Cargo project), each with one reactor/worker
# pinned to the first half of the cores, the load generator (wrk, h2load) on the rest,
# loopback only, every run bounded. Each server/scenario runs ROUNDS times interleaved
# (A B C D A B C D ...); medians are printed and written to benches/RESULTS.md with the
# ratios to hyper-on-tokio and to the ceiling, the request path's shape (task polls, pipe
# locks, SQEs, kernel enters per request, from the servers' own counters), and a chart
# (benches/http-cpu.svg: CPU µs per request, plain and pipelined).
#
#   bash benches/http/run.sh                 # ROUNDS=3 DURATION=5s
#   ROUNDS=5 DURATION=10s bash benches/http/run.sh
#   SERVER_CPUS=0-3 LOAD_CPUS=4-7 REACTORS=4 bash benches/http/run.sh   # larger machines
#   RAW=benches/http/last-run.txt bash benches/http/run.sh   # tables from a run's raw lines
#
# Every run keeps its raw per-round lines (and the idle-RSS lines) in benches/http/last-run.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
H2_REQUESTS=${H2_REQUESTS:-200000}
# Reactors (native, hyper-ringhop) and tokio workers (hyper-tokio) per server.
REACTORS=${REACTORS:-1}
# wrk threads: one per load core is the usual choice on larger machines.
WRK_THREADS=${WRK_THREADS:-1}
cores=$(nproc)
half=$(( cores / 2 > 0 ? cores / 2 : 1 ))
SERVER_CPUS=${SERVER_CPUS:-0-$((half - 1))}
LOAD_CPUS=${LOAD_CPUS:-$half-$((cores - 1))}
[ "$cores" -ge 2 ] || LOAD_CPUS=0
if [ -z "${RAW:-}" ]; then
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet --example hello --example hyper_app --example ceiling --example latency_probe
cargo build --release --quiet --manifest-path benches/peers/Cargo.toml
ticks=$(getconf CLK_TCK)
# The probe runs for the middle of each pipelined run: DURATION minus a second.
probe_ms=$(( $(echo "$DURATION" | sed 's/s$//') * 1000 - 1000 ))
port=19000
fi
results=$(mktemp)
measured_at=$(date -u '+%Y-%m-%d %H:%M UTC')
if [ -n "${RAW:-}" ]; then
    # The first line says when the raw lines were measured.
    measured_at=$(head -1 "$RAW" | sed 's/^# measured //')
    tail -n +2 "$RAW" | grep -v '^rss ' >"$results"
    rss=$(sed -n 's/^rss //p' "$RAW")
fi

server_log=$(mktemp)
start_server() { # name → pid on $port; its stdout goes to $server_log
    local env=(ADDR=127.0.0.1:$port REACTORS=$REACTORS)
    case $1 in
        ceiling) env "${env[@]}" taskset -c "$SERVER_CPUS" target/release/examples/ceiling >"$server_log" & ;;
        native) env "${env[@]}" RINGHOP_DRIVER=io_uring taskset -c "$SERVER_CPUS" target/release/examples/hello >"$server_log" & ;;
        native-epoll) env "${env[@]}" RINGHOP_DRIVER=epoll taskset -c "$SERVER_CPUS" target/release/examples/hello >"$server_log" & ;;
        hyper-ringhop) env "${env[@]}" RINGHOP_DRIVER=io_uring TRANSPORT=ringhop taskset -c "$SERVER_CPUS" target/release/examples/hyper_app >"$server_log" & ;;
        hyper-ringhop-epoll) env "${env[@]}" RINGHOP_DRIVER=epoll TRANSPORT=ringhop taskset -c "$SERVER_CPUS" target/release/examples/hyper_app >"$server_log" & ;;
        hyper-tokio) env "${env[@]}" TRANSPORT=tokio taskset -c "$SERVER_CPUS" target/release/examples/hyper_app >"$server_log" & ;;
        monoio) env "${env[@]}" taskset -c "$SERVER_CPUS" benches/peers/target/release/monoio_plaintext >"$server_log" & ;;
        may-minihttp) env "${env[@]}" taskset -c "$SERVER_CPUS" benches/peers/target/release/may_minihttp_plaintext >"$server_log" & ;;
    esac
    pid=$!
    for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:$port/plaintext" && return; sleep 0.02; done
    echo "server $1 did not start" >&2; exit 1
}
stop_server() { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; port=$((port + 1)); }
# The request path's shape the ringhop examples print at shutdown ("-" for other servers).
shape() { grep -o "per request: .*" "$server_log" | sed 's/per request: //; s/ task polls, /\//; s/ pipe locks, /\//; s/ submissions, /\//; s/ kernel enters//' | grep . || echo "-"; }
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# User and system ticks apart: where a server's CPU goes (its code, or the kernel's).
cpu_split() { awk '{print $14, $15}' "/proc/$pid/stat"; }

# name:connections:path:servers:extra wrk args
all="ceiling native native-epoll hyper-ringhop hyper-ringhop-epoll hyper-tokio monoio may-minihttp"
ours="native native-epoll hyper-ringhop hyper-ringhop-epoll hyper-tokio"
scenarios=(
    "plaintext-c64:64:/plaintext:$all:"
    "plaintext-pipelined16-c256:256:/plaintext:$all:-s benches/http/pipeline.lua"
    "json-c64:64:/json:$ours:"
)
if [ -z "${RAW:-}" ]; then
for scenario in "${scenarios[@]}"; do
    IFS=: read -r name conns path servers extra <<<"$scenario"
    for round in $(seq "$ROUNDS"); do
        for server in $servers; do
            start_server "$server"
            before=$(cpu)
            read -r user_before sys_before <<<"$(cpu_split)"
            probe_out=$(mktemp)
            if [ -n "$extra" ]; then
                # Pipelined: a probe connection times batches of 16 alongside wrk's load
                # (starting after wrk's connections are up, ending before wrk does).
                (sleep 0.5; taskset -c "$LOAD_CPUS" target/release/examples/latency_probe "127.0.0.1:$port" "$path" 16 "$probe_ms" >"$probe_out") &
                probe=$!
            fi
            # shellcheck disable=SC2086
            out=$(taskset -c "$LOAD_CPUS" wrk -t"$WRK_THREADS" -c"$conns" -d"$DURATION" --latency $extra "http://127.0.0.1:$port$path")
            after=$(cpu)
            read -r user_after sys_after <<<"$(cpu_split)"
            if [ -n "$extra" ]; then
                wait "$probe" || echo "latency probe failed" >&2
                p99="$(awk '{print $2}' "$probe_out")us"
            else
                p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
            fi
            rm -f "$probe_out"
            stop_server
            requests=$(echo "$out" | awk '/requests in/ {print $1}')
            rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
            us=$(awk -v t="$((after - before))" -v hz="$ticks" -v r="$requests" 'BEGIN { printf "%.2f", t / hz * 1e6 / r }')
            path_shape=$(shape)
            split=$(awk -v u="$((user_after - user_before))" -v s="$((sys_after - sys_before))" -v hz="$ticks" -v r="$requests" \
                'BEGIN { printf "%.2f %.2f", u / hz * 1e6 / r, s / hz * 1e6 / r }')
            echo "$name $server $rps $us $p99 $path_shape $split" >>"$results"
            echo "$name round $round $server: $rps req/s, $us us CPU/request (user/sys ${split/ //}), p99 $p99, polls/locks/sqes/enters per request $path_shape"
        done
    done
done
for round in $(seq "$ROUNDS"); do
    for server in hyper-ringhop hyper-tokio; do
        start_server "$server"
        before=$(cpu)
        out=$(taskset -c "$LOAD_CPUS" h2load -n "$H2_REQUESTS" -c 10 -m 10 "http://127.0.0.1:$port/plaintext")
        after=$(cpu)
        stop_server
        rps=$(echo "$out" | awk '/finished in/ {print $4}')
        errors=$(echo "$out" | awk '/^requests:/ {print $10 + $12}')
        us=$(awk -v t="$((after - before))" -v hz="$ticks" -v r="$H2_REQUESTS" 'BEGIN { printf "%.2f", t / hz * 1e6 / r }')
        echo "h2-c10-m10 $server $rps $us errors=$errors" >>"$results"
        echo "h2 round $round $server: $rps req/s, $us us CPU/request, $errors failed+errored"
    done
done

# RSS per idle keep-alive connection (10,000 connections), native and hyper on tokio.
rss=$(cargo bench --quiet --bench http_idle_rss 2>/dev/null | grep "bytes per connection" | awk '!seen[$0]++' || echo "http_idle_rss failed")
{ echo "# measured $measured_at"; cat "$results"; echo "$rss" | sed 's/^/rss /'; } >benches/http/last-run.txt
fi
echo "$rss"

# Medians and ratios.
medians=$(mktemp)
table=$(awk -v medians="$medians" '
    { key = $1 SUBSEP $2; n[key]++; rps[key, n[key]] = $3; us[key, n[key]] = $4; p99[key, n[key]] = $5;
      shape[key, n[key]] = (NF >= 6) ? $6 : "-";
      user[key, n[key]] = (NF >= 8) ? $7 : 0; sys[key, n[key]] = (NF >= 8) ? $8 : 0;
      if (!($1 in seen)) { seen[$1] = 1; order[++scenarios] = $1 } }
    # The middle of v[1..count], sorted in place.
    function middle(v, count,   i, j, t) {
        for (i = 1; i <= count; i++) for (j = i + 1; j <= count; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
        return v[int((count + 1) / 2)]
    }
    function median(arr, key, count,   i, v) {
        for (i = 1; i <= count; i++) v[i] = arr[key, i] + 0
        return middle(v, count)
    }
    # The median of the per-round ratios of `arr` (CPU/request or req/s): each round runs
    # every server back to back, so a drift of the machine between rounds (seen here: a whole
    # server 20 % faster in its last rounds than in its first) cancels in the pair.
    function paired(arr, key, base,   i, v, count) {
        count = (n[key] < n[base]) ? n[key] : n[base]
        for (i = 1; i <= count; i++) v[i] = (arr[base, i] > 0) ? arr[key, i] / arr[base, i] : 0
        return middle(v, count)
    }
    END {
        print "| scenario | server | req/s (median) | CPU µs/request | user / sys µs | p99 | req/s vs hyper-tokio | CPU/req vs hyper-tokio | req/s vs ceiling | CPU/req vs ceiling | task polls / pipe locks / SQEs / enters per request |"
        print "|---|---|---|---|---|---|---|---|---|---|---|"
        count = split("ceiling native native-epoll hyper-ringhop hyper-ringhop-epoll hyper-tokio monoio may-minihttp", names, " ")
        for (s = 1; s <= scenarios; s++) {
            sc = order[s]
            base = sc SUBSEP "hyper-tokio"; ceil = sc SUBSEP "ceiling"
            brps = (base in n) ? median(rps, base, n[base]) : 0; bus = (base in n) ? median(us, base, n[base]) : 0
            crps = (ceil in n) ? median(rps, ceil, n[ceil]) : 0; cus = (ceil in n) ? median(us, ceil, n[ceil]) : 0
            for (k = 1; k <= count; k++) {
                key = sc SUBSEP names[k]
                if (!(key in n)) continue
                mid = int((n[key] + 1) / 2)
                r = median(rps, key, n[key]); u = median(us, key, n[key]); p = p99[key, mid]
                su = median(user, key, n[key]); ss = median(sys, key, n[key])
                printf "| %s | %s | %.0f | %.2f | %s | %s | %s | %s | %s | %s | %s |\n", sc, names[k], r, u,
                    (su + ss > 0) ? sprintf("%.2f / %.2f", su, ss) : "-", p,
                    brps ? sprintf("%.2f (%.2f)", r / brps, paired(rps, key, base)) : "-",
                    bus ? sprintf("%.2f (%.2f)", u / bus, paired(us, key, base)) : "-",
                    crps ? sprintf("%.2f (%.2f)", r / crps, paired(rps, key, ceil)) : "-",
                    cus ? sprintf("%.2f (%.2f)", u / cus, paired(us, key, ceil)) : "-",
                    shape[key, mid]
                printf "%s %s %.3f\n", sc, names[k], u >> medians
            }
        }
    }' "$results")
# The chart: CPU µs per request for each server, plain and pipelined, each panel on its own
# scale (pipelined requests cost a tenth as much).
awk '
    $1 == "plaintext-c64" { plain[$2] = $3; if ($3 > pmax) pmax = $3; if (!($2 in seen)) { seen[$2] = 1; order[++count] = $2 } }
    $1 == "plaintext-pipelined16-c256" { piped[$2] = $3; if ($3 > qmax) qmax = $3 }
    END {
        row = 26; top = 60; label = 170; bar = 300; gap = 60; width = label + 2 * bar + gap + 80
        height = top + count * row + 30
        printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"13\">\n", width, height
        printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
        printf "<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">Server CPU per request (µs, lower is better), one core, same run</text>\n"
        printf "<text x=\"%d\" y=\"48\" font-weight=\"bold\">plain, wrk -c64</text>\n", label
        printf "<text x=\"%d\" y=\"48\" font-weight=\"bold\">pipelined 16, wrk -c256</text>\n", label + bar + gap
        for (i = 1; i <= count; i++) {
            name = order[i]; y = top + (i - 1) * row
            color = (name ~ /^(native|hyper-ringhop)/) ? "#d9480f" : (name == "ceiling" ? "#495057" : "#1c7ed6")
            printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", label - 8, y + 15, name
            if (name in plain && pmax > 0) {
                w = plain[name] / pmax * bar
                printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"18\" fill=\"%s\"/>\n", label, y + 2, w, color
                printf "<text x=\"%.1f\" y=\"%d\">%.2f</text>\n", label + w + 4, y + 15, plain[name]
            }
            if (name in piped && qmax > 0) {
                w = piped[name] / qmax * bar
                printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"18\" fill=\"%s\"/>\n", label + bar + gap, y + 2, w, color
                printf "<text x=\"%.1f\" y=\"%d\">%.2f</text>\n", label + bar + gap + w + 4, y + 15, piped[name]
            }
        }
        printf "</svg>\n"
    }' "$medians" >benches/http-cpu.svg
rm -f "$medians" "$server_log"
echo
echo "$table"
{
    echo "# HTTP load results"
    echo
    echo "Generated by \`bash benches/http/run.sh\` from a run on $measured_at (raw lines: [http/last-run.txt](http/last-run.txt))."
    echo
    echo "- Machine: $(nproc) cores ($(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ //')), kernel $(uname -r)."
    echo "- Servers pinned with \`taskset -c $SERVER_CPUS\` ($REACTORS reactor(s) / tokio worker(s); one means a current_thread runtime), load generator with \`taskset -c $LOAD_CPUS\`."
    echo "- wrk: \`wrk -t$WRK_THREADS -c<connections> -d$DURATION --latency [-s benches/http/pipeline.lua] http://127.0.0.1:<port><path>\`; h2load: \`h2load -n $H2_REQUESTS -c 10 -m 10\`."
    echo "- $ROUNDS rounds per server and scenario, interleaved; medians shown. Ratios: the ratio of the medians, and in parentheses the median of the per-round ratios (the servers of a round run back to back, so a drift of the machine between rounds cancels in it). CPU µs/request = (user+sys of the server process over the run) / requests served; \`user / sys µs\` are the medians of the two parts apart (the server's own code and libraries, and the kernel's work on its behalf)."
    echo "- p99: wrk's for non-pipelined runs. For pipelined runs wrk's percentiles are unreliable, so a probe connection (\`benches/http/probe.rs\`, on the load cores) sends batches of 16 pipelined requests during the run, 1 ms apart, and p99 is that of its batch round trips (the time from writing a batch to the 16th response)."
    echo "- The ceiling server (\`benches/http/ceiling.rs\`) parses nothing and answers every \`\\r\\n\\r\\n\` with a canned response of the same size."
    echo "- \`native\` is \`examples/hello\`, \`hyper-ringhop\` and \`hyper-tokio\` are \`examples/hyper_app\` with \`TRANSPORT=ringhop|tokio\` (the same service and hyper settings: timer, 30 s header timeout, HTTP/2 keep-alive); \`-epoll\` rows run with \`RINGHOP_DRIVER=epoll\`. \`monoio\` (io_uring, COOP_TASKRUN, a hand-written httparse loop, no pipes) and \`may-minihttp\` are in \`benches/peers\`; their answers carry their own Server header (a few bytes shorter or longer)."
    echo "- Shape: task polls, pipe locks, SQEs (epoll: op syscalls) and kernel enters per request, from the ringhop examples' own counters printed at shutdown."
    echo
    echo "![CPU µs per request](http-cpu.svg)"
    echo
    echo "$table"
    echo
    echo "RSS per idle keep-alive connection (\`cargo bench --bench http_idle_rss\`: 10,000 connections, each after one \`/plaintext\` request; the server process's RSS growth from before its first request / 10,000):"
    echo
    echo "$rss" | sed 's/^/- /'
    echo
    echo "Driver and restructure A/B figures: [RESULTS-drivers.md](RESULTS-drivers.md)."
} >benches/RESULTS.md
echo "wrote benches/RESULTS.md"
rm -f "$results"
