#!/usr/bin/env bash
# bench/sessions.sh: the sessions curve. proxyd as shipped holds idle CONNECT
# tunnels in steps (1k, 10k, 50k, 100k); at each step: tunnels held and
# failed, the setup rate, RSS per tunnel over all of proxyd's processes, the
# latency of fresh requests through the proxy meanwhile, the worker count and
# the spread of sessions over the workers.
#
#   make bench-sessions     (or: bench/sessions.sh)
#
# proxyd runs from conf/proxyd.conf itself, with only what the bench must
# change rewritten in place: the listen address, pid_file, control_socket,
# error_log, and [acl] deny_private_destinations = no and connect_ports =
# 1-65535 (the sinks are on loopback). Everything else, [master] workers and
# every [limits] key included, is the shipped value.
#
# One process may hold at most `ulimit -Hn` descriptors (20000 in some
# containers, and root cannot raise it there), and one source address has
# about 28k ephemeral ports towards one proxy address, so the tunnels are
# opened by several bench/tunnel_hold processes of at most SESSIONS_CHUNK
# tunnels each (2 descriptors per tunnel: its client side and its sink side),
# each dialling from a source address of its own (127.0.2.K) and sinking on
# an address of its own (127.0.1.K), so proxyd's upstream side has a
# 4-tuple space per sink. Linux routes all of 127.0.0.0/8 on lo.
#
# Kernel limits (ip_local_port_range, file-max, nr_open, somaxconn,
# tcp_max_syn_backlog) are read and reported, never changed: a step that
# cannot fit is skipped and the report says why.
#
# Writes bench/work/sessions.tsv (one line per step) and the "Sessions curve"
# section of bench/RESULTS.md (replaced in place; the rest of the file is
# left as it is). Knobs (environment):
#   SESSIONS_STEPS="1000 10000 50000 100000"  held tunnels at each step
#   SESSIONS_EXTRA_CONF=""   more configuration, INI text: "key = value" lines
#                            before any [section] go to the section the
#                            shipped file has the key in (e.g. "workers = 8")
#   SESSIONS_PROBES=500      fresh HTTP requests per step (latency)
#   SESSIONS_CHUNK=8000      tunnels per holder process
#   SESSIONS_TIMEOUT=120     seconds allowed to open one step's tunnels (a
#                            holder also gives up after 15 s without a new
#                            tunnel); keep the whole curve under proxyd's
#                            tunnel_idle_timeout (300 s shipped), which closes
#                            tunnels idle that long
#   SESSIONS_PORT_BASE=19300 ports BASE..BASE+2 on loopback
#   SESSIONS_REPORT=1        0: leave bench/RESULTS.md alone
#   SESSIONS_CONF=conf/proxyd.conf  the shipped file the overrides go into
#   PROXYD, PROXYCTL         the binaries (build/proxyd, build/proxyctl)
set -u -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/processes.sh
. "$HERE/processes.sh"
ROOT=$(dirname "$HERE")
W=$HERE/work/sessions
TSV=$HERE/work/sessions.tsv
STEPS=${SESSIONS_STEPS:-"1000 10000 50000 100000"}
EXTRA=${SESSIONS_EXTRA_CONF:-}
PROBES=${SESSIONS_PROBES:-500}
CHUNK=${SESSIONS_CHUNK:-8000}
STEP_TIMEOUT=${SESSIONS_TIMEOUT:-120}
BASE=${SESSIONS_PORT_BASE:-19300}
WRITE_REPORT=${SESSIONS_REPORT:-1}
PROXYD=${PROXYD:-$ROOT/build/proxyd}
PROXYCTL=${PROXYCTL:-$ROOT/build/proxyctl}
SHIPPED=${SESSIONS_CONF:-$ROOT/conf/proxyd.conf}
ORIGIN_PORT=$BASE
PROXY_PORT=$((BASE + 1))
SINK_PORT=$((BASE + 2))
P99_GOAL_MS=50
SPREAD_GOAL=1.2
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')

log() { printf '[sessions %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
# Every process this script starts is in PIDS; all of them (and what they
# started) are killed on exit, error or Ctrl-C.
PIDS=()
cleanup() { kill_trees "${PIDS[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the machine's limits
# sysctl_value NAME: the value, from /proc/sys (tabs to spaces), or "?"
sysctl_value() { tr '\t' ' ' <"/proc/sys/${1//.//}" 2>/dev/null || echo "?"; }
# check_limits: what the curve needs of the kernel, logged and written to
# $W/limits.md for the report; nothing is changed. Sets FD_ROOM: tunnels the
# machine-wide descriptor limit leaves room for (4 descriptors per tunnel:
# proxyd's two and the holder's two).
check_limits() {
    local range ports filemax nropen somax synb hard used
    range=$(sysctl_value net.ipv4.ip_local_port_range)
    ports=$(awk '{ print $2 - $1 + 1 }' <<<"$range")
    filemax=$(sysctl_value fs.file-max)
    nropen=$(sysctl_value fs.nr_open)
    somax=$(sysctl_value net.core.somaxconn)
    synb=$(sysctl_value net.ipv4.tcp_max_syn_backlog)
    hard=$(ulimit -Hn)
    used=$(awk '{ print $1 }' /proc/sys/fs/file-nr 2>/dev/null || echo 0)
    FD_ROOM=$(((filemax - used - 10000) / 4))
    {
        echo "| limit | value | what the curve needs | changed |"
        echo "|---|---|---|---|"
        echo "| net.ipv4.ip_local_port_range | $range ($ports ports) | ≥ $CHUNK per source address (one holder each) | no |"
        echo "| fs.file-max | $filemax ($used in use at start) | 4 per tunnel over all processes (room for $FD_ROOM tunnels) | no |"
        echo "| fs.nr_open | $nropen | ≥ RLIMIT_NOFILE | no |"
        echo "| RLIMIT_NOFILE hard (ulimit -Hn) | $hard | per process: proxyd's workers 2 per tunnel + pool, holders 2 per tunnel | no (not raisable in this container) |"
        echo "| net.core.somaxconn | $somax | ≥ the listen backlog (shipped: 511) | no |"
        echo "| net.ipv4.tcp_max_syn_backlog | $synb | handshakes in flight (holders: 128 each) | no |"
    } >"$W/limits.md"
    [ "$ports" -ge "$CHUNK" ] 2>/dev/null || log "warning: ip_local_port_range has $ports ports, fewer than SESSIONS_CHUNK=$CHUNK per source address"
    [ "$((2 * CHUNK + 64))" -le "$hard" ] || die "SESSIONS_CHUNK=$CHUNK needs $((2 * CHUNK + 64)) descriptors per holder; ulimit -Hn is $hard"
    log "limits: ports $range, file-max $filemax, nr_open $nropen, somaxconn $somax, syn backlog $synb, ulimit -Hn $hard (none changed)"
}

# ---------------------------------------------------------------- configuration
# shipped_conf: conf/proxyd.conf with the bench's overrides and
# SESSIONS_EXTRA_CONF rewritten in place. An override replaces the key's
# active line in its section, or uncomments-and-replaces a commented one
# (";key ="), or is added at the section's end; a section the file lacks is
# appended. Lines of SESSIONS_EXTRA_CONF before any [section] go to the
# section whose lines (active or commented) have that key.
shipped_conf() {
    local overrides="[master]
pid_file = $W/proxyd.pid
control_socket = $W/proxyd.sock
[log]
error_log = $W/error.log
[listen main]
address = 127.0.0.1:$PROXY_PORT
[acl]
deny_private_destinations = no
connect_ports = 1-65535
[]
$EXTRA"
    awk -v overrides="$overrides" '
        function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }
        function key_of(line,   k) { k = line; sub(/^[;#]?[ \t]*/, "", k); if (k !~ /^[a-z_0-9]+[ \t]*=/) return ""; sub(/[ \t]*=.*/, "", k); return k }
        NR == FNR { lines[++n] = $0; if ($0 ~ /^\[/) { sec = $0; secs[sec] = 1 } else { k = key_of($0); if (k != "" && !((k) in home)) home[k] = sec }; next }
        END {
            sec = ""
            m = split(overrides, ov, "\n")
            for (i = 1; i <= m; i++) {
                l = trim(ov[i]); if (l == "" || l ~ /^[;#]/) continue
                if (l == "[]") { sec = ""; continue }   # SESSIONS_EXTRA_CONF starts
                if (l ~ /^\[/) { sec = l; continue }
                k = key_of(l); if (k == "") continue
                s = (sec != "") ? sec : home[k]
                if (s == "") s = "[master]"
                want[s, k] = l; order[++o] = s SUBSEP k
            }
            sec = ""
            for (i = 1; i <= n; i++) {
                l = lines[i]
                if (l ~ /^\[/) { flush(sec); sec = l; print l; continue }
                k = key_of(l)
                if (k != "" && ((sec, k) in want) && !((sec, k) in done)) {
                    # an active line, or a commented one when no active line follows in the section
                    if (l !~ /^[;#]/ || !active_later(i, sec, k)) { print want[sec, k]; done[sec, k] = 1; continue }
                }
                print l
            }
            flush(sec)
            for (j = 1; j <= o; j++) { split(order[j], p, SUBSEP); if (!((p[1], p[2]) in done) && !(p[1] in secs)) { if (!(p[1] in opened)) { print p[1]; opened[p[1]] = 1 } print want[p[1], p[2]]; done[p[1], p[2]] = 1 } }
        }
        function active_later(i, sec, k,   j) {
            for (j = i + 1; j <= n && lines[j] !~ /^\[/; j++) if (lines[j] !~ /^[;#]/ && key_of(lines[j]) == k) return 1
            return 0
        }
        function flush(sec,   j) {
            if (sec == "") return
            for (j = 1; j <= o; j++) { split(order[j], p, SUBSEP); if (p[1] == sec && !((p[1], p[2]) in done)) { print want[p[1], p[2]]; done[p[1], p[2]] = 1 } }
        }' "$SHIPPED"
}
# the overrides, one line each, for the report
overrides_text() {
    printf '%s' "listen address 127.0.0.1:$PROXY_PORT, pid_file, control_socket, error_log (under bench/work/sessions/), [acl] deny_private_destinations = no, connect_ports = 1-65535"
    [ -n "$EXTRA" ] && printf '; SESSIONS_EXTRA_CONF: %s' "$(printf '%s' "$EXTRA" | paste -sd ';' | sed 's/;/; /g')"
}

# ---------------------------------------------------------------- processes
wait_port() {  # wait_port PORT SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
start_origin() {
    mkdir -p "$W/origin" "$W/www"
    head -c 1024 /dev/urandom >"$W/www/1k"
    cat >"$W/origin/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $W/origin/nginx.pid;
error_log $W/origin/error.log warn;
worker_rlimit_nofile 10000;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_timeout 60s;
    default_type application/octet-stream;
    server { listen 127.0.0.1:$ORIGIN_PORT backlog=4096; root $W/www; }
}
EOF
    nginx -p "$W/origin/" -c "$W/origin/nginx.conf" >"$W/origin/stderr" 2>&1 &
    PIDS+=($!)
    wait_port "$ORIGIN_PORT" 10 || die "origin nginx did not start: $(cat "$W/origin/stderr")"
}
start_proxyd() {
    shipped_conf >"$W/proxyd.conf"
    "$PROXYD" -t -c "$W/proxyd.conf" >"$W/check.txt" 2>&1 || die "proxyd -t refuses the configuration: $(tail -c 400 "$W/check.txt")"
    "$PROXYD" -c "$W/proxyd.conf" >"$W/stderr" 2>&1 &
    PROXYD_PID=$!
    PIDS+=("$PROXYD_PID")
    wait_port "$PROXY_PORT" 20 || die "proxyd did not start: $(tail -c 400 "$W/stderr" "$W/error.log" 2>/dev/null)"
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -x "http://127.0.0.1:$PROXY_PORT" "http://127.0.0.1:$ORIGIN_PORT/1k")
    [ "$code" = 200 ] || die "a request through proxyd answered $code"
}
# rss_kib: VmRSS summed over proxyd's master and every worker
rss_kib() {
    local p t=0 v
    for p in $(tree_pids "$PROXYD_PID"); do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
# pss_kib: Pss summed over the same processes: each shared page (the
# binary's and libraries' text, counted in every process's RSS) divided
# among the processes that map it, so the sum is the memory they take
pss_kib() {
    local p t=0 v
    for p in $(tree_pids "$PROXYD_PID"); do
        v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
# workers: one line per worker: pid active_sessions (proxyctl, the master's
# view from the last heartbeat)
workers() {
    timeout 5 "$PROXYCTL" -s "$W/proxyd.sock" --json workers 2>/dev/null |
        tr '{' '\n' | awk -F, '/"pid":/ {
            pid = act = 0
            for (i = 1; i <= NF; i++) {
                split($i, kv, ":"); gsub(/[" \[\]}]/, "", kv[1]); gsub(/[" \[\]}]/, "", kv[2])
                if (kv[1] == "pid") pid = kv[2]; else if (kv[1] == "active_sessions") act = kv[2]
            }
            print pid, act }'
}

# ---------------------------------------------------------------- one step
HOLDERS=()        # every holder started, in order
FIRST_TUNNEL_AT=""
NEXT_HOLDER=0     # the next holder's index (its addresses: 127.0.2.K+1, 127.0.1.K+1)
# open_tunnels ADD: ADD more tunnels, in new holders of at most CHUNK each,
# all started at once; waits until every one of them is READY (a holder gives
# up on its pending tunnels after 15 s without a new one). Sets STEP to
# "established failed elapsed_ms", failed = not established (refused, or
# still unanswered) (no subshell: HOLDERS and PIDS must keep
# the new holders).
open_tunnels() {
    local add=$1 chunks k m left i ready h first=${#HOLDERS[@]}
    chunks=$(((add + CHUNK - 1) / CHUNK)); left=$add
    for ((k = 0; k < chunks; k++)); do
        m=$((left / (chunks - k))); left=$((left - m))
        h=$NEXT_HOLDER; NEXT_HOLDER=$((h + 1))
        [ "$h" -lt 250 ] || die "more than 250 holders: raise SESSIONS_CHUNK"
        : >"$W/holder.$h"   # before the holder runs: the wait below reads it at once
        "$W/tunnel_hold" "$PROXY_PORT" "$SINK_PORT" "$m" 128 "$STEP_TIMEOUT" "127.0.2.$((h + 1))" "127.0.1.$((h + 1))" \
            >"$W/holder.$h" 2>&1 &
        PIDS+=($!); HOLDERS+=($!)
    done
    for ((i = 0; i < (STEP_TIMEOUT + 30) * 10; i++)); do
        ready=0
        for ((k = first; k < ${#HOLDERS[@]}; k++)); do
            if grep -q '^READY' "$W/holder.$k" || ! kill -0 "${HOLDERS[$k]}" 2>/dev/null; then ready=$((ready + 1)); fi
        done
        [ "$ready" = "$chunks" ] && break
        sleep 0.1
    done
    for ((k = first; k < ${#HOLDERS[@]}; k++)); do
        grep -q '^READY' "$W/holder.$k" || log "holder $k: no READY: $(tail -c 200 "$W/holder.$k" | tr '\n' ' ')"
    done
    STEP=$(for ((k = first; k < ${#HOLDERS[@]}; k++)); do
        grep -h '^READY' "$W/holder.$k" || echo "READY established=0 failed=$((add / chunks)) elapsed_ms=0"
    done | awk -v add="$add" '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] += kv[2]; if (kv[1] == "elapsed_ms" && kv[2] > t) t = kv[2] } }
        END { printf "%d %d %d\n", v["established"], add - v["established"], t }')
}
# alive: tunnels still open over all holders (each answers SIGUSR1 with ALIVE)
alive() {
    local k i n
    for ((k = 0; k < ${#HOLDERS[@]}; k++)); do
        n=$(grep -c '^ALIVE' "$W/holder.$k")
        kill -USR1 "${HOLDERS[$k]}" 2>/dev/null || continue
        for ((i = 0; i < 50; i++)); do [ "$(grep -c '^ALIVE' "$W/holder.$k")" -gt "$n" ] && break; sleep 0.1; done
    done
    for ((k = 0; k < ${#HOLDERS[@]}; k++)); do grep '^ALIVE' "$W/holder.$k" | tail -1; done |
        awk '{ split($2, kv, "="); s += kv[2] } END { print s + 0 }'
}
# probe: PROBES fresh HTTP requests through proxyd, one after the other, each
# on a new connection (Connection: close), from one curl. Prints
# "p50_ms p99_ms max_ms errors"; the raw answers stay in $W/probe.STEP.
probe() {
    timeout $((PROBES / 5 + 60)) curl -s --max-time 10 -H 'Connection: close' -x "http://127.0.0.1:$PROXY_PORT" -o /dev/null \
        -w '%{http_code} %{time_total} %{num_connects}\n' "http://127.0.0.1:$ORIGIN_PORT/1k?[1-$PROBES]" 2>/dev/null |
        tee "$W/probe.$1" | awk -v n="$PROBES" '$1 == 200 { t[++ok] = $2 * 1000 } END {
            for (i = 2; i <= ok; i++) { x = t[i]; j = i - 1; while (j >= 1 && t[j] > x) { t[j + 1] = t[j]; j-- } t[j + 1] = x }
            if (!ok) { printf "0 0 0 %d\n", n; exit }
            p99 = int(ok * 0.99 + 0.999); if (p99 < 1) p99 = 1
            printf "%.2f %.2f %.2f %d\n", t[int((ok + 1) / 2)], t[p99], t[ok], n - ok }'
}
# spread: "workers max/mean sum" of active sessions over the workers
spread() {
    workers | awk '{ n++; s += $2; if ($2 > m) m = $2 } END { if (n && s > 0) printf "%d %.2f %d\n", n, m / (s / n), s; else printf "%d nan %d\n", n, s }'
}
# log_lines: lines in proxyd's error log so far
log_lines() { wc -l <"$W/error.log" 2>/dev/null || echo 0; }
# warnings_since N: warn, error and alert lines after line N of the error log
warnings_since() { tail -n +$(($1 + 1)) "$W/error.log" 2>/dev/null | grep -c '\[\(warn\|error\|alert\)\]'; }

# ---------------------------------------------------------------- report
# sessions_md: the "Sessions curve" section of RESULTS.md from the TSV
sessions_md() {
    echo "## Sessions curve (\`make bench-sessions\`)"
    echo
    echo "Generated by \`bench/sessions.sh\` on $STARTED ($(nproc) CPUs, $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo));"
    echo "$($PROXYD -v 2>&1 | head -1). proxyd runs from \`conf/proxyd.conf\` as shipped, with only these lines changed:"
    echo "$(overrides_text)."
    echo "Idle CONNECT tunnels are opened in steps and held (cumulatively) by \`bench/tunnel_hold\` processes of at most"
    echo "$CHUNK tunnels each, from source addresses 127.0.2.K to sinks on 127.0.1.K:$SINK_PORT. At each step, while they are"
    echo "held: RSS summed over proxyd's master and every worker (per tunnel: total ÷ held, and (total − RSS before any"
    echo "tunnel) ÷ held; PSS: the same processes' Pss summed, which counts each shared page of the binary and its libraries"
    echo "once rather than once per worker, ÷ held), $PROBES fresh HTTP requests through proxyd one after the other (new connection each, to a 1 KiB"
    echo "file; goal p99 < $P99_GOAL_MS ms), and the worker count and the spread of active sessions over workers from"
    echo "\`proxyctl workers\` (max ÷ mean; goal ≤ $SPREAD_GOAL). Setup rate: the step's new tunnels ÷ the time to open them."
    echo "Held: tunnels still open at the holders; in parentheses the active sessions proxyd's workers report. Warnings:"
    echo "warn, error and alert lines of proxyd's error log during the step (\`bench/work/sessions/error.log\`)."
    echo
    echo "| step | held (proxyd's count) | failed (step) | setup tunnels/s | RSS MiB | KiB/tunnel total | KiB/tunnel above baseline | PSS KiB/tunnel | probe p50 / p99 / max ms | probe errors | workers | spread max/mean | warnings logged | verdict |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    awk -F'\t' -v goal="$P99_GOAL_MS" -v sg="$SPREAD_GOAL" 'NR > 1 {
        v = ""
        if ($3 > 0) v = v "refused " $3 "; "
        if ($2 < $1) v = v "holds " $2 " of " $1 "; "
        if ($10 + 0 >= goal) v = v "p99 over " goal " ms; "
        if ($14 != "nan" && $14 + 0 > sg) v = v "spread over " sg "; "
        if ($12 > 0) v = v "probe errors; "
        if ($16 > 0) v = v "see error.log; "
        if (v == "") v = "ok"; else sub(/; $/, "", v)
        lat = ($9 + $10 + $11 == 0) ? "— / — / —" : sprintf("%.2f / %.2f / %.2f", $9, $10, $11)
        pss = ($2 > 0 && $17 > 0) ? sprintf("%.2f", $17 / $2) : "—"
        printf "| %d | %d (%d) | %d | %.0f | %.1f | %.2f | %.2f | %s | %s | %d | %d | %s | %d | %s |\n", $1, $2, $15, $3, $4, $5 / 1024, $6, $7, pss, lat, $12, $13, $14, $16, v }' "$TSV"
    echo
    [ -s "$W/skipped" ] && { cat "$W/skipped"; echo; }
    if grep -q '\[\(warn\|error\|alert\)\]' "$W/error.log" 2>/dev/null; then
        echo "What proxyd logged (warn and above, the whole run, numbers replaced by N):"
        echo
        grep '\[\(warn\|error\|alert\)\]' "$W/error.log" | sed 's/^[^[]*//; s/[0-9][0-9]*/N/g' | cut -c1-240 |
            sort | uniq -c | sort -rn | head -8 | awk '{ n = $1; sub(/^ *[0-9]+ /, ""); printf "- %d × `%s`\n", n, $0 }'
        echo
    fi
    echo "Kernel limits, read at the start and not changed:"
    echo
    cat "$W/limits.md"
    echo
}
# write_report: replace the "## Sessions curve" section of RESULTS.md (to
# the next "## " heading or the end), or append it; the rest stays as it is
write_report() {
    local out=$HERE/RESULTS.md
    sessions_md >"$W/section.md"
    [ -f "$out" ] || : >"$out"
    awk -v sect="$W/section.md" '
        function put() { while ((getline l < sect) > 0) print l; put_done = 1 }
        /^## / { if ($0 ~ /^## Sessions curve/) { skip = 1; if (!put_done) put(); next } skip = 0 }
        !skip { print }
        END { if (!put_done) { print ""; put() } }' "$out" >"$out.new" && mv "$out.new" "$out"
    log "wrote the Sessions curve section of $out"
}

# ---------------------------------------------------------------- main
main() {
    local step held=0 t_step est fail ms rss0 rss pss n alive_n p50 p99 pmax perr nw spr psess rate mark warns
    command -v nginx >/dev/null || die "nginx is required (the origin of the probes)"
    command -v curl >/dev/null || die "curl is required"
    [ -x "$PROXYD" ] || die "no $PROXYD: make build first (make bench-sessions does)"
    [ -f "$SHIPPED" ] || die "no $SHIPPED"
    ulimit -n "$(ulimit -Hn)"
    rm -rf "$W"; mkdir -p "$W"
    g++ -O2 -std=c++20 -o "$W/tunnel_hold" "$HERE/tunnel_hold.cpp" || die "cannot build tunnel_hold"
    check_limits
    start_origin
    start_proxyd
    sleep 2
    rss0=$(rss_kib)
    read -r nw spr _ <<<"$(spread)"
    log "proxyd up on :$PROXY_PORT (pid $PROXYD_PID), $nw workers, RSS $rss0 KiB before any tunnel"
    printf 'step\theld\tfailed\tsetup_per_s\trss_kib\tkib_per_tunnel\tkib_per_tunnel_above_base\trss_base_kib\tp50_ms\tp99_ms\tmax_ms\tprobe_errors\tworkers\tspread\tproxyd_sessions\tlog_warnings\tpss_kib\n' >"$TSV"
    : >"$W/skipped"
    for step in $STEPS; do
        [ "$step" -gt "$held" ] || continue
        if [ "$step" -gt "$FD_ROOM" ]; then
            echo "- step $step skipped: fs.file-max leaves room for about $FD_ROOM tunnels (4 descriptors each over all processes)." >>"$W/skipped"
            log "step $step skipped: fs.file-max"; break
        fi
        n=$((step - held))
        mark=$(log_lines)
        t_step=$(date +%s)
        log "step $step: opening $n tunnels"
        open_tunnels "$n"
        read -r est fail ms <<<"$STEP"
        sleep 2   # heartbeats (1 s) bring the workers' counts to the master
        alive_n=$(alive)
        rss=$(rss_kib)
        pss=$(pss_kib)
        read -r p50 p99 pmax perr <<<"$(probe "$step")"
        read -r nw spr psess <<<"$(spread)"
        warns=$(warnings_since "$mark")
        rate=$(awk -v e="$est" -v ms="$ms" 'BEGIN { printf "%.0f", (ms > 0 ? e / (ms / 1000) : 0) }')
        printf '%d\t%d\t%d\t%s\t%d\t%s\t%s\t%d\t%s\t%s\t%s\t%d\t%d\t%s\t%d\t%d\t%d\n' "$step" "$alive_n" "$fail" "$rate" "$rss" \
            "$(awk -v r="$rss" -v n="$alive_n" 'BEGIN { printf "%.2f", n ? r / n : 0 }')" \
            "$(awk -v r="$rss" -v b="$rss0" -v n="$alive_n" 'BEGIN { printf "%.2f", n ? (r - b) / n : 0 }')" \
            "$rss0" "$p50" "$p99" "$pmax" "$perr" "$nw" "$spr" "${psess:-0}" "$warns" "$pss" >>"$TSV"
        log "step $step: held $alive_n (proxyd counts ${psess:-?} sessions), failed $fail, ${rate}/s, RSS $rss KiB, probes p50 $p50 p99 $p99 max $pmax ms ($perr errors), $nw workers, spread $spr (sessions by worker: $(workers | awk '{ printf "%s%s", sep, $2; sep = " " }')), $warns warnings logged"
        held=$alive_n
        [ -z "$FIRST_TUNNEL_AT" ] && FIRST_TUNNEL_AT=$t_step
        if ! kill -0 "$PROXYD_PID" 2>/dev/null; then
            echo "- proxyd's master exited during step $step: $(tail -n 3 "$W/error.log" 2>/dev/null | tr '\n' ' ')" >>"$W/skipped"
            log "proxyd exited: no larger step"; break
        fi
        if [ "$fail" -gt $((n / 100)) ]; then
            echo "- stopped after step $step: $fail of its $n tunnels were refused (more than 1 %), so larger steps would measure refusals." >>"$W/skipped"
            log "more than 1 % refused: no larger step"; break
        fi
    done
    column -t -s $'\t' "$TSV" >&2 2>/dev/null || cat "$TSV" >&2
    # proxyd closes a tunnel idle for tunnel_idle_timeout: a curve that took
    # that long lost its first tunnels to it, not to load
    local idle age
    idle=$(awk -F'[ =;]+' '/^\[/ { s = $0 } s == "[limits]" && $1 == "tunnel_idle_timeout" { print $2 }' "$W/proxyd.conf")
    age=$(($(date +%s) - ${FIRST_TUNNEL_AT:-$(date +%s)}))
    echo "- The first tunnels were held ${age} s in all; proxyd's tunnel_idle_timeout is ${idle:-?} (tunnels idle that long are closed, which the held count would show)." >>"$W/skipped"
    if [ "$WRITE_REPORT" = 1 ]; then write_report; fi
    return 0
}

main "$@"
