#!/usr/bin/env bash
# bench/run.sh: compare proxyd with other forward proxies on this machine.
#
#   make bench            (or: bench/run.sh)
#
# Installs its peers from Debian packages when missing (tinyproxy, squid,
# privoxy, nginx, wrk, gnuplot, redis-server), never starts, stops or reconfigures a system
# service: every program runs from its own binary with its own config under
# bench/work/, on loopback ports only, and is killed on exit.
#
# Writes bench/RESULTS.md and bench/results.png; raw numbers go to
# bench/work/raw.tsv. Knobs (environment):
#   BENCH_DURATION=5        seconds per wrk run
#   BENCH_REPS=3            interleaved repetitions
#   BENCH_PEERS="noproxy nginx proxyd proxyd-tuned proxyd-auth proxyd-rotate proxyd-parent proxyd-leases proxyd-cluster tinyproxy squid privoxy"
#                           proxyd: the shipped configuration (only ports,
#                           paths, workers = 2 and the loopback ACL changed);
#                           proxyd-tuned: the same plus the tuning of TUNED_*
#                           proxyd-leases: an authenticated proxyd whose user has
#                           max_sessions (every request takes a lease in the
#                           node's own table); proxyd-cluster: the same plus
#                           [cluster] redis = a redis-server of the bench's own,
#                           whose CPU and RSS the row includes
#   BENCH_TUNNELS="5000 20000"  (empty: no held-tunnel test)
#   BENCH_PROFILE=1         perf profile of a proxyd worker under keep-alive load
#   BENCH_INSTALL=1         install missing Debian packages
#   BENCH_ONE_N=10          single-stream rows: downloads per repetition
#   BENCH_PORT_BASE=19000   ports BASE..BASE+22 on 127.0.0.1
set -u -o pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/processes.sh
. "$HERE/processes.sh"
ROOT=$(dirname "$HERE")
W=$HERE/work
DUR=${BENCH_DURATION:-5}
REPS=${BENCH_REPS:-3}
PEERS=${BENCH_PEERS:-"noproxy nginx proxyd proxyd-tuned proxyd-auth proxyd-rotate proxyd-parent proxyd-leases proxyd-cluster tinyproxy squid privoxy"}
TUNNELS=${BENCH_TUNNELS-"5000 20000"}   # set but empty: no held-tunnel test
ONE_N=${BENCH_ONE_N:-10}
PROFILE=${BENCH_PROFILE:-1}
INSTALL=${BENCH_INSTALL:-1}
BASE=${BENCH_PORT_BASE:-19000}
PROXYD=${PROXYD:-$ROOT/build/proxyd}
PROXYCTL=${PROXYCTL:-$ROOT/build/proxyctl}

ORIGIN_PORT=$((BASE + 0))
ORIGIN_TLS_PORT=$((BASE + 1))
SINK_PORT=$((BASE + 2))
declare -A PORT=([noproxy]=$ORIGIN_PORT [nginx]=$((BASE + 10)) [proxyd]=$((BASE + 11))
                 [tinyproxy]=$((BASE + 12)) [squid]=$((BASE + 13)) [privoxy]=$((BASE + 14))
                 [proxyd-auth]=$((BASE + 15)) [proxyd-rotate]=$((BASE + 16)) [proxyd-parent]=$((BASE + 17))
                 [proxyd-parent-up]=$((BASE + 18)) [proxyd-leases]=$((BASE + 19))
                 [proxyd-cluster]=$((BASE + 20)) [proxyd-cluster-redis]=$((BASE + 21))
                 [proxyd-tuned]=$((BASE + 22)))
# proxyd-auth is no process of its own: it is proxyd's second listener
# (`auth = password`), so its CPU is the same process tree's. Its wrk runs
# send Basic credentials with every request, and only these tests have it.
AUTH_USER=bench
AUTH_PASS=benchpass
AUTH_HEADER="Basic $(printf '%s:%s' "$AUTH_USER" "$AUTH_PASS" | base64 -w0)"
AUTH_TESTS="ka50 ka200 close50"
NO_USERS=""   # why proxyd has no auth listener, if it has none
# proxyd-rotate and proxyd-parent are proxyd processes of their own, each
# configured like the proxyd peer plus a [route]: four source addresses in
# rotation, or one proxyd parent (proxyd-parent-up, a second process that
# the row's CPU and RSS include). Their checks prove the route is taken.
ROTATE_SOURCES="127.0.0.2, 127.0.0.3, 127.0.0.4, 127.0.0.5"
# proxyd-leases and proxyd-cluster are proxyd processes of their own whose
# main listener is authenticated like proxyd-auth's (same users file, same
# account), and whose account has a max_sessions limit it never reaches, so
# every request takes a lease and gives it back: proxyd-leases in the node's
# own table, proxyd-cluster in Redis ([cluster] redis = a redis-server the
# bench starts, proxyd-cluster-redis, which the row's CPU and RSS include).
# The two configurations differ in [cluster] alone, so their ratio is the
# cost of the shared store. They run the AUTH_TESTS only.
LEASE_LIMIT=100000
LEASE_PEERS="proxyd-leases proxyd-cluster"
AUTH_PEERS="proxyd-auth $LEASE_PEERS"
is_auth_peer() { [[ " $AUTH_PEERS " == *" $1 "* ]]; }
ROTATE_PROBES=8
declare -A PID=()        # peer -> root pid of its process tree
declare -A BROKEN=()     # peer -> why it could not be measured at all
declare -A NOTE=()       # peer -> remark for the report
declare -A TUNNEL_BROKEN=()  # peer -> why its CONNECT and tunnel rows are not measured
STARTED_AT=$(date +%s)
LOAD_START=$(cut -d" " -f1-3 /proc/loadavg)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

# ---------------------------------------------------------------- cleanup
BG_PIDS=()
cleanup() { kill_trees "${PID[@]}" "${BG_PIDS[@]}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- process trees
# cpu_ticks ROOT...: utime+stime (clock ticks) summed over the trees.
cpu_ticks() {
    local r p t=0 v
    for p in $(for r in "$@"; do tree_pids "$r"; done); do
        v=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || continue
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
# rss_kib ROOT...: VmRSS summed over the trees.
rss_kib() {
    local r p t=0 v
    for p in $(for r in "$@"; do tree_pids "$r"; done); do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
# peer_roots PEER: the roots of every process tree a peer's row pays for
# (proxyd-parent: the front and its parent; proxyd-cluster: proxyd and its
# redis-server).
peer_roots() { echo "${PID[$1]:-}" "${PID[$1-up]:-}" "${PID[$1-redis]:-}"; }
# machine_ticks: "busy total" clock ticks of all CPUs (/proc/stat), to tell
# how saturated the machine was during a run and what the whole machine
# (load generator, origin, proxies) spent per request.
machine_ticks() { awk '$1 == "cpu" { busy = $2 + $3 + $4 + $7 + $8 + $9; print busy, busy + $5 + $6; exit }' /proc/stat; }
HZ=$(getconf CLK_TCK)
tcp_active_opens() { awk '/^Tcp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "ActiveOpens") c = i; h = 1 } else print $c }' /proc/net/snmp; }
origin_accepts() { curl -s --max-time 2 "http://127.0.0.1:$ORIGIN_PORT/nginx_status" | awk 'NR == 3 { print $1 }'; }

wait_port() {  # wait_port PORT SECONDS
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- install
need_install() {
    local missing=()
    command -v nginx >/dev/null || missing+=(nginx)
    command -v squid >/dev/null || missing+=(squid)
    command -v tinyproxy >/dev/null || missing+=(tinyproxy)
    command -v privoxy >/dev/null || [ -x /usr/sbin/privoxy ] || missing+=(privoxy)
    command -v wrk >/dev/null || missing+=(wrk)
    command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v curl >/dev/null || missing+=(curl)
    command -v g++ >/dev/null || missing+=(g++)
    command -v perf >/dev/null || missing+=(linux-perf)
    command -v htpasswd >/dev/null || missing+=(apache2-utils)
    command -v redis-server >/dev/null || missing+=(redis-server)
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$INSTALL" != 1 ] || [ "$(id -u)" != 0 ]; then
        log "missing packages: ${missing[*]} (run as root, or install them); going on without"
        return 0
    fi
    log "installing: ${missing[*]}"
    # Keep the packages' maintainer scripts from starting their services.
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
    fi
    local before
    before=$(ps -e -o pid= | sort)
    timeout 600 apt-get update -qq >&2 || log "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >&2 || log "apt-get install failed for some of: ${missing[*]}"
    [ $made_policy = 1 ] && rm -f /usr/sbin/policy-rc.d
    # Anything the install started anyway (no policy-rc.d honoured, no
    # systemd): stop it with the package's own means, then kill what is left.
    local p c
    for p in nginx squid tinyproxy privoxy redis-server; do
        case " ${missing[*]} " in *" $p "*) ;; *) continue ;; esac
        timeout 20 service "$p" stop >/dev/null 2>&1 || true
    done
    for p in $(ps -e -o pid= | sort | comm -13 <(echo "$before") -); do
        c=$(cat "/proc/$p/comm" 2>/dev/null) || continue
        case "$c" in nginx|squid|tinyproxy|privoxy|log_file_daemon|redis-server) kill -TERM "$p" 2>/dev/null && log "killed auto-started $c ($p)" ;; esac
    done
}

# ---------------------------------------------------------------- work dir
setup_workdir() {
    rm -rf "$W"
    mkdir -p "$W"/{www,tls,origin,nginx,proxyd,proxyd-tuned,proxyd-auth,proxyd-rotate,proxyd-parent,proxyd-parent-up,proxyd-leases,proxyd-cluster,proxyd-cluster-redis,tinyproxy,squid,privoxy,wrk,out}
    head -c 1024 /dev/urandom >"$W/www/1k"
    head -c 65536 /dev/urandom >"$W/www/64k"
    head -c 16777216 /dev/urandom >"$W/www/16m"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=127.0.0.1 \
        -keyout "$W/tls/key.pem" -out "$W/tls/cert.pem" >/dev/null 2>&1 || die "openssl req failed"
    g++ -O2 -std=c++20 -o "$W/tunnel_hold" "$HERE/tunnel_hold.cpp" || die "cannot build tunnel_hold"
    # wrk script: absolute-form (or origin-form) path, Host header, an
    # optional "Connection: close" and an optional Proxy-Authorization
    # (sent with every request) come from the environment; done() prints
    # one machine-readable line.
    cat >"$W/wrk/bench.lua" <<'EOF'
wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH")
wrk.headers["Host"] = os.getenv("BENCH_HOST")
if os.getenv("BENCH_CLOSE") == "1" then wrk.headers["Connection"] = "close" end
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Proxy-Authorization"] = auth end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d max_us=%d e_connect=%d e_read=%d e_write=%d e_status=%d e_timeout=%d\n",
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
EOF
}

# ---------------------------------------------------------------- peers
start_origin() {
    cat >"$W/origin/nginx.conf" <<EOF
user root;
worker_processes 1;
daemon off;
pid $W/origin/nginx.pid;
error_log $W/origin/error.log warn;
worker_rlimit_nofile 200000;
events { worker_connections 100000; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$ORIGIN_PORT backlog=4096;
        root $W/www;
        location = /nginx_status { stub_status; }
        # who connected: proxyd-rotate's check counts the source addresses
        location = /peer { default_type text/plain; return 200 "\$remote_addr\n"; }
    }
    server {
        listen 127.0.0.1:$ORIGIN_TLS_PORT ssl backlog=4096;
        ssl_certificate $W/tls/cert.pem;
        ssl_certificate_key $W/tls/key.pem;
        root $W/www;
    }
}
EOF
    nginx -p "$W/origin/" -c "$W/origin/nginx.conf" >"$W/origin/stderr" 2>&1 &
    PID[origin]=$!
    if ! wait_port "$ORIGIN_PORT" 10 || ! wait_port "$ORIGIN_TLS_PORT" 10; then
        die "origin nginx did not start: $(cat "$W/origin/stderr")"
    fi
}

# nginx, tuned per row as its documentation (ngx_http_proxy_module,
# ngx_http_upstream_module) advises: an upstream keep-alive cache per worker
# sized to the concurrency (ka200: 200 connections over 2 workers), HTTP/1.1
# with Connection cleared so the cache is used, no temp files, and for the
# 16 MiB file proxy buffers of 64k (the default is 8 x one memory page).
NGINX_KEEPALIVE=256
NGINX_BIG_BUFFERS="proxy_buffer_size 64k; proxy_buffers 8 64k; proxy_busy_buffers_size 128k;"
NGINX_SETTINGS="\`worker_processes 2\`, \`upstream { keepalive $NGINX_KEEPALIVE; keepalive_requests 10000000; }\`, \`proxy_http_version 1.1\`, \`proxy_set_header Connection \"\"\`, \`proxy_max_temp_file_size 0\`; for \`/16m\`: \`$NGINX_BIG_BUFFERS\`; \`/1k\`: the default \`proxy_buffers 8 4k\`, \`proxy_buffer_size 4k\` (a 1 KiB answer fits)"
# squid and privoxy, tuned for the large-body rows as their manuals advise
# (one setting for all rows: neither has per-location buffers; the 1 KiB rows
# only pay the memory): squid's read_ahead_gap (default 16 KB) bounds how far
# it reads from the server ahead of the client, privoxy's receive-buffer-size
# (default 5000 bytes) is the piece it reads from the server at a time.
SQUID_READ_AHEAD="64 KB"
PRIVOXY_RECEIVE_BUFFER=65536
write_configs() {
    settings
    cat >"$W/nginx/nginx.conf" <<EOF
user root;
worker_processes 2;
daemon off;
pid $W/nginx/nginx.pid;
error_log $W/nginx/error.log warn;
worker_rlimit_nofile 200000;
events { worker_connections 100000; }
http {
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    upstream origin { server 127.0.0.1:$ORIGIN_PORT; keepalive $NGINX_KEEPALIVE; keepalive_requests 10000000; }
    server {
        listen 127.0.0.1:${PORT[nginx]} backlog=4096;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_max_temp_file_size 0;
        location / { proxy_pass http://origin; }
        # large bodies: buffers sized for them, as ngx_http_proxy_module
        # advises (the default, 8 buffers of one 4 KiB page, reads a 16 MiB
        # body 4 KiB at a time)
        location = /16m {
            proxy_pass http://origin;
            $NGINX_BIG_BUFFERS
        }
    }
}
EOF
    # proxyd-auth's account, bcrypt at cost 10 as a deployment would make it.
    # Without htpasswd proxyd runs with its plain listener only.
    local auth_conf=""
    if ! command -v htpasswd >/dev/null; then
        NO_USERS="htpasswd (apache2-utils) not installed: no users file"
    elif ! htpasswd -nbB -C 10 "$AUTH_USER" "$AUTH_PASS" >"$W/proxyd/users" 2>"$W/proxyd-auth/stderr"; then
        NO_USERS="htpasswd failed: $(head -c 200 "$W/proxyd-auth/stderr" | tr '\n' ' ')"
    else
        auth_conf="[listen auth]
address = 127.0.0.1:${PORT[proxyd-auth]}
auth = password
[auth]
users_file = $W/proxyd/users"
    fi
    proxyd_conf proxyd "$auth_conf" >"$W/proxyd/proxyd.conf"
    proxyd_conf proxyd-tuned >"$W/proxyd-tuned/proxyd.conf"
    # The routing rows: the proxyd peer's configuration plus a [route]
    # (routing is per configuration, so each is a process of its own).
    proxyd_conf proxyd-rotate "" "[route]
source_addresses = $ROTATE_SOURCES
rotation = round-robin" >"$W/proxyd-rotate/proxyd.conf"
    # Two chained proxyd need different [proxy] names (Via loop detection).
    proxyd_conf proxyd-parent "" "[proxy]
name = proxyd-front
[route]
parents = up
[parent up]
url = http://127.0.0.1:${PORT[proxyd-parent-up]}" >"$W/proxyd-parent/proxyd.conf"
    proxyd_conf proxyd-parent-up "" "[proxy]
name = proxyd-parent" >"$W/proxyd-parent-up/proxyd.conf"
    # The lease rows: the main listener authenticated (the line goes into
    # [listen main]), the bench account with a limit it never reaches; the
    # cluster row's leases are Redis's.
    if [ -z "$NO_USERS" ]; then
        local lease_sections="[auth]
users_file = $W/proxyd/users
[user $AUTH_USER]
max_sessions = $LEASE_LIMIT"
        proxyd_conf proxyd-leases "auth = password" "$lease_sections" >"$W/proxyd-leases/proxyd.conf"
        proxyd_conf proxyd-cluster "auth = password" "$lease_sections
[cluster]
redis = 127.0.0.1:${PORT[proxyd-cluster-redis]}
node = bench" >"$W/proxyd-cluster/proxyd.conf"
    fi
    chmod 777 "$W/tinyproxy"
    cat >"$W/tinyproxy/tinyproxy.conf" <<EOF
User nobody
Group nogroup
Port ${PORT[tinyproxy]}
Listen 127.0.0.1
Timeout 600
LogFile "$W/tinyproxy/tinyproxy.log"
LogLevel Error
PidFile "$W/tinyproxy/tinyproxy.pid"
MaxClients 30000
Allow 127.0.0.1
DisableViaHeader Yes
EOF
    chown proxy:proxy "$W/squid" 2>/dev/null
    cat >"$W/squid/squid.conf" <<EOF
http_port 127.0.0.1:${PORT[squid]}
workers 2
pid_filename $W/squid/squid.pid
cache_log $W/squid/cache.log
access_log none
cache_store_log none
cache deny all
cache_mem 0
memory_cache_shared off
acl bench src 127.0.0.1/32
http_access allow bench
http_access deny all
max_filedescriptors 200000
via off
forwarded_for delete
cache_effective_user proxy
coredump_dir $W/squid
logfile_rotate 0
shutdown_lifetime 1 seconds
client_persistent_connections on
server_persistent_connections on
# large bodies: read ahead of the client by more than the default 16 KB
read_ahead_gap $SQUID_READ_AHEAD
EOF
    cat >"$W/privoxy/bench.action" <<'EOF'
{+limit-connect{1-65535}}
/
EOF
    cat >"$W/privoxy/config" <<EOF
listen-address 127.0.0.1:${PORT[privoxy]}
confdir $W/privoxy
logdir $W/privoxy
logfile privoxy.log
actionsfile bench.action
toggle 1
enable-remote-toggle 0
enable-edit-actions 0
max-client-connections 30000
keep-alive-timeout 300
socket-timeout 300
connection-sharing 1
default-server-timeout 60
# large bodies: receive in larger pieces than the default 5000 bytes
receive-buffer-size $PRIVOXY_RECEIVE_BUFFER
EOF
}

# proxyd_conf PEER [LISTENERS] [SECTIONS]: PEER's proxyd configuration: the
# shipped one (conf/proxyd.conf, whose values are the binary's defaults, so
# every key not written here keeps its shipped value, including the [limits]
# a newer proxyd changes) with only what the bench must change: PEER's port
# and paths, workers = 2 (the targets are for 2 workers on these 2 CPUs) and
# an [acl] that lets it reach the origin on loopback. proxyd-tuned adds the
# tuning of TUNED_LISTEN and TUNED_LIMITS. LISTENERS go into [listen main]
# and after it, SECTIONS at the end.
TUNED_LISTEN="backlog = 4096"
TUNED_LIMITS="max_connections = 30000
upstream_keepalive_per_destination = 256"
proxyd_conf() {
    local p=$1 listeners=${2:-} sections=${3:-} tune_listen="" tune_limits=""
    if [ "$p" = proxyd-tuned ]; then
        tune_listen=$TUNED_LISTEN
        tune_limits="[limits]
$TUNED_LIMITS"
    fi
    cat <<EOF
[master]
workers = 2
pid_file = $W/$p/proxyd.pid
control_socket = $W/$p/proxyd.sock
[log]
error_log = $W/$p/error.log
[listen main]
address = 127.0.0.1:${PORT[$p]}
$tune_listen
$listeners
$tune_limits
[acl]
deny_private_destinations = no
connect_ports = 1-65535
$sections
EOF
}
# settings: what each peer's configuration sets beyond its own defaults, in
# one line per peer for the report (SETTINGS[peer]); proxyd's are the
# overrides of proxyd_conf.
declare -A SETTINGS=()
settings() {
    local base="shipped \`conf/proxyd.conf\` (binary defaults) except \`workers = 2\`, the listen address, \`pid_file\`, \`control_socket\`, \`error_log\`, \`[acl] deny_private_destinations = no\` and \`connect_ports = 1-65535\` (the origin is on loopback)"
    SETTINGS[proxyd]="$base"
    SETTINGS[proxyd-tuned]="as proxyd, plus \`${TUNED_LISTEN}\`, \`[limits] ${TUNED_LIMITS//$'\n'/, }\`"
    SETTINGS[proxyd-rotate]="as proxyd, plus \`[route] source_addresses = $ROTATE_SOURCES\`, \`rotation = round-robin\`"
    SETTINGS[proxyd-parent]="two processes, each as proxyd, plus \`[proxy] name\` (proxyd-front, proxyd-parent) and the front's \`[route] parents = up\`"
    SETTINGS[proxyd-leases]="as proxyd, plus \`auth = password\`, \`[auth] users_file\`, \`[user $AUTH_USER] max_sessions = $LEASE_LIMIT\`"
    SETTINGS[proxyd-cluster]="as proxyd-leases, plus \`[cluster] redis\` (a redis-server of the bench's own, no persistence), \`node = bench\`"
    SETTINGS[proxyd-auth]="proxyd's process, a second listener with \`auth = password\`"
    SETTINGS[nginx]="$NGINX_SETTINGS"
    SETTINGS[tinyproxy]="\`MaxClients 30000\`, \`Timeout 600\`, \`DisableViaHeader Yes\`, \`LogLevel Error\` (thread per connection, no worker setting)"
    SETTINGS[squid]="\`workers 2\`, \`read_ahead_gap $SQUID_READ_AHEAD\` (default 16 KB), \`cache deny all\`, \`cache_mem 0\`, \`memory_cache_shared off\`, \`access_log none\`, \`max_filedescriptors 200000\`, client and server persistent connections on"
    SETTINGS[privoxy]="\`receive-buffer-size $PRIVOXY_RECEIVE_BUFFER\` (default 5000), \`max-client-connections 30000\`, \`connection-sharing 1\`, \`keep-alive-timeout 300\`, no filtering actions (\`+limit-connect{1-65535}\` only)"
    SETTINGS[noproxy]="the origin: nginx, 1 worker, \`sendfile on\`, \`tcp_nopush on\`, keep-alive \`keepalive_requests 10000000\`"
}

start_peer() {  # start_peer NAME: starts it, sets PID[NAME], returns 1 if it fails
    local p=$1 port=${PORT[$1]}
    [ "$p" = noproxy ] && { PID[noproxy]=${PID[origin]}; return 0; }
    [ "$p" = proxyd-auth ] && { start_auth_peer; return; }
    if is_auth_peer "$p" && [ -n "$NO_USERS" ]; then BROKEN[$p]=$NO_USERS; return 1; fi
    # proxyd-cluster needs its Redis up first
    if [ "$p" = proxyd-cluster ] && ! start_redis; then
        stop_peer proxyd-cluster-redis
        return 1
    fi
    # proxyd-parent's front needs its parent up first
    if [ "$p" = proxyd-parent ] && ! start_peer proxyd-parent-up; then
        BROKEN[proxyd-parent]="its parent proxyd did not come up: ${BROKEN[proxyd-parent-up]}"
        unset 'BROKEN[proxyd-parent-up]'
        return 1
    fi
    port_free "$port" || { BROKEN[$p]="port $port busy"; stop_peer "$p"; return 1; }
    case $p in
        nginx) nginx -p "$W/nginx/" -c "$W/nginx/nginx.conf" >"$W/nginx/stderr" 2>&1 & ;;
        proxyd|proxyd-tuned|proxyd-rotate|proxyd-parent|proxyd-parent-up|proxyd-leases|proxyd-cluster)
            "$PROXYD" -c "$W/$p/proxyd.conf" >"$W/$p/stderr" 2>&1 & ;;
        tinyproxy) tinyproxy -d -c "$W/tinyproxy/tinyproxy.conf" >"$W/tinyproxy/stderr" 2>&1 & ;;
        squid) squid --foreground -n benchsquid -f "$W/squid/squid.conf" >"$W/squid/stderr" 2>&1 & ;;
        privoxy) privoxy --no-daemon "$W/privoxy/config" >"$W/privoxy/stderr" 2>&1 & ;;
    esac
    PID[$p]=$!
    if ! wait_port "$port" 20; then
        BROKEN[$p]="did not start: $(tail -c 300 "$W/$p/stderr" | tr '\n' ' ')"
        stop_peer "$p"
        return 1
    fi
    # squid: the port is up before both kids are; give them a moment.
    [ "$p" = squid ] && sleep 2
    # a proxy must actually proxy: one request through it
    local code
    code=$(peer_curl "$p" "http://127.0.0.1:$ORIGIN_PORT/1k")
    if [ "$code" != 200 ]; then
        BROKEN[$p]="test request answered $code"
        stop_peer "$p"
        return 1
    fi
    # the routing rows must really take their route, the lease rows their
    # leases (and where)
    local why=""
    case $p in
        proxyd-rotate) why=$(check_rotation) ;;
        proxyd-parent) why=$(check_parent) ;;
        proxyd-leases|proxyd-cluster) why=$(check_leases "$p") ;;
    esac
    if [ -n "$why" ]; then
        BROKEN[$p]=$why
        stop_peer "$p"
        return 1
    fi
    # ...and their CONNECT too, or their CONNECT and tunnel rows are left out
    # the lease rows: fill both workers' credential caches before measuring
    is_auth_peer "$p" && warm_up "$p"
    case $p in proxyd-rotate|proxyd-parent)
        why=$(check_connect "$p")
        if [ -n "$why" ]; then TUNNEL_BROKEN[$p]=$why; log "$p: CONNECT and tunnel rows left out: $why"
        else unset 'TUNNEL_BROKEN[$p]'; fi ;;
    esac
    return 0
}
# check_rotation: ROTATE_PROBES requests on one client connection (so on one
# worker, whose round-robin then walks the routes) to the origin's /peer,
# which echoes the address it was reached from. Prints why the row would
# measure no rotation, if it would not; else notes the addresses seen.
check_rotation() {
    local urls=() i seen n stray
    for ((i = 0; i < ROTATE_PROBES; i++)); do urls+=("http://127.0.0.1:$ORIGIN_PORT/peer"); done
    seen=$(curl -s --max-time 10 -x "http://127.0.0.1:${PORT[proxyd-rotate]}" "${urls[@]}" | sort -u | grep .)
    n=$(printf '%s' "$seen" | grep -c .)
    stray=$(printf '%s\n' "$seen" | grep -vxF -f <(printf '%s\n' "${ROTATE_SOURCES//, /$'\n'}") | tr '\n' ' ')
    seen=$(printf '%s' "$seen" | tr '\n' ' ')
    if [ "$n" -lt 2 ]; then
        echo "rotation not in effect: over $ROTATE_PROBES requests the origin saw $n source address(es) (${seen:-none}), not 2 or more of $ROTATE_SOURCES"
    elif [ -n "${stray// /}" ]; then
        echo "the origin saw source addresses not in source_addresses: $stray"
    else
        echo "over $ROTATE_PROBES requests on one connection the origin saw $n source addresses: $seen" >"$W/proxyd-rotate/seen"
    fi
}
# check_parent: the front's answer must carry both proxies' Via entries
# (the parent's, then the front's), i.e. the request went through the parent.
check_parent() {
    local via
    via=$(curl -s -D - -o /dev/null --max-time 5 -x "http://127.0.0.1:${PORT[proxyd-parent]}" \
        "http://127.0.0.1:$ORIGIN_PORT/1k" | tr -d '\r' | awk -F': *' 'tolower($1) == "via" { printf "%s%s", sep, $2; sep = ", " }')
    case $via in
        *proxyd-parent*proxyd-front*) echo "Via: $via" >"$W/proxyd-parent/via" ;;
        *) echo "the answer did not come through the parent: Via \"$via\", expected the entries of proxyd-parent and proxyd-front" ;;
    esac
}
# check_connect PEER: one HTTPS download through PEER's CONNECT; prints why
# it failed, if it did. proxyd-parent's tunnel must also be counted by the
# parent (its `tunnels` counter, which workers report within a heartbeat).
check_connect() {
    local code err=$W/$1/connect_check.err t0=0 t1=0 i
    [ "$1" = proxyd-parent ] && t0=$(proxyd_stat "$W/proxyd-parent-up" tunnels)
    code=$(curl -sS -k -p -x "http://127.0.0.1:${PORT[$1]}" --max-time 10 -o /dev/null -w '%{http_code}' \
        "https://127.0.0.1:$ORIGIN_TLS_PORT/1k" 2>"$err")
    if [ "$code" != 200 ]; then
        echo "a download through its CONNECT failed (status $code): $(tr '\n' ' ' <"$err" | head -c 300)"
        return 0
    fi
    [ "$1" = proxyd-parent ] || return 0
    for ((i = 0; i < 30; i++)); do
        t1=$(proxyd_stat "$W/proxyd-parent-up" tunnels)
        [ "${t1:-0}" -gt "${t0:-0}" ] && return 0
        sleep 0.1
    done
    echo "a download through its CONNECT worked but did not go through the parent (its tunnels counter stayed at ${t1:-?})"
}
# start_redis: proxyd-cluster's store, a redis-server of its own on loopback
# with no persistence, in $W/proxyd-cluster-redis. Sets PID[proxyd-cluster-redis].
start_redis() {
    local p=proxyd-cluster-redis port=${PORT[proxyd-cluster-redis]} d=$W/proxyd-cluster-redis
    command -v redis-server >/dev/null || { BROKEN[proxyd-cluster]="redis-server not installed"; return 1; }
    port_free "$port" || { BROKEN[proxyd-cluster]="Redis port $port busy"; return 1; }
    redis-server --bind 127.0.0.1 --port "$port" --dir "$d" --save "" --appendonly no \
        --daemonize no --logfile "$d/redis.log" --maxclients 1000 >"$d/stderr" 2>&1 &
    PID[$p]=$!
    if ! wait_port "$port" 10; then
        BROKEN[proxyd-cluster]="redis-server did not start: $(tail -c 300 "$d/redis.log" "$d/stderr" 2>/dev/null | tr '\n' ' ')"
        return 1
    fi
    return 0
}
# cluster_field KEY: a top-level field of proxyd-cluster's `cluster` answer
# (the per-worker list, whose items have the same keys, removed first)
cluster_field() {
    timeout 3 "$PROXYCTL" -s "$W/proxyd-cluster/proxyd.sock" --json cluster 2>/dev/null |
        sed 's/"per_worker":\[[^]]*\]//' | grep -o "\"$1\":"'\("[^"]*"\|[0-9]*\)' | head -1 | sed 's/^"[^"]*"://; s/"//g'
}
# check_leases PEER: the account must have the limit (so each request takes
# a lease); a request without credentials must get 407. proxyd-cluster's
# workers must be connected to its Redis and a request with credentials must
# raise the commands counter (workers report within a heartbeat) without a
# fallback to the local table, and Redis must hold proxyd's keys. Prints why
# the row would not measure what it says, if it would not.
check_leases() {
    local p=$1 code limit c0 c1 f0 f1 state i keys
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -x "http://127.0.0.1:${PORT[$p]}" "http://127.0.0.1:$ORIGIN_PORT/1k")
    [ "$code" = 407 ] || { echo "a request without credentials answered $code, not 407"; return 0; }
    limit=$(timeout 3 "$PROXYCTL" -s "$W/$p/proxyd.sock" --json users 2>/dev/null | grep -o '"max_sessions":[0-9]*' | head -1 | cut -d: -f2)
    [ "$limit" = "$LEASE_LIMIT" ] || { echo "user $AUTH_USER has max_sessions ${limit:-?}, not $LEASE_LIMIT: its requests would take no lease"; return 0; }
    [ "$p" = proxyd-cluster ] || { echo "user $AUTH_USER: max_sessions $limit, leases in the node's table" >"$W/$p/leases"; return 0; }
    for ((i = 0; i < 50; i++)); do
        state=$(cluster_field state)
        [ "$state" = connected ] && break
        sleep 0.1
    done
    [ "$state" = connected ] || { echo "its workers are not connected to Redis (cluster state \"${state:-no answer}\", last error: $(cluster_field last_error))"; return 0; }
    c0=$(cluster_field commands); f0=$(cluster_field fallbacks)
    code=$(peer_curl "$p" "http://127.0.0.1:$ORIGIN_PORT/1k")
    [ "$code" = 200 ] || { echo "a request with credentials answered $code"; return 0; }
    for ((i = 0; i < 50; i++)); do
        c1=$(cluster_field commands)
        [ "${c1:-0}" -gt "${c0:-0}" ] && break
        sleep 0.1
    done
    f1=$(cluster_field fallbacks)
    [ "${c1:-0}" -gt "${c0:-0}" ] || { echo "a request with credentials sent no command to Redis (commands stayed at ${c1:-?})"; return 0; }
    [ "${f1:-0}" = "${f0:-0}" ] || { echo "a request fell back to the local table (fallbacks ${f0:-?} -> ${f1:-?})"; return 0; }
    keys=$(redis-cli -p "${PORT[proxyd-cluster-redis]}" --scan --pattern 'proxyd:*' 2>/dev/null | head -5 | paste -sd ' ')
    [ -n "$keys" ] || { echo "Redis holds no proxyd:* key after a request"; return 0; }
    echo "cluster state connected; one request sent $((c1 - c0)) command(s) to Redis; keys: $keys" >"$W/$p/leases"
}
# warm_up PEER: 2 s of 50 keep-alive clients with credentials, not recorded,
# so both workers' credential caches hold the account before a measured run
warm_up() {
    BENCH_PATH=http://127.0.0.1:$ORIGIN_PORT/1k BENCH_HOST=127.0.0.1:$ORIGIN_PORT BENCH_CLOSE=0 BENCH_AUTH=$AUTH_HEADER \
        timeout 30 wrk -t2 -c50 -d2s --timeout 5s -s "$W/wrk/bench.lua" "http://127.0.0.1:${PORT[$1]}" >"$W/$1/warm_up.txt" 2>&1
    sleep 0.5
}
# proxyd_stat DIR KEY: a top-level number of that proxyd's `stats` answer
proxyd_stat() {
    timeout 3 "$PROXYCTL" -s "$1/proxyd.sock" --json stats 2>/dev/null | grep -o "\"$2\":[0-9]*" | head -1 | cut -d: -f2
}
# start_auth_peer: proxyd-auth is proxyd's `auth = password` listener, so
# proxyd is started first if it is not running. A request without
# credentials must get 407 (else the row would measure nothing); then the
# first contact is measured, which also fills both workers' credential
# caches; then a request with credentials must get 200.
start_auth_peer() {
    local port=${PORT[proxyd-auth]} code
    [ -n "$NO_USERS" ] && { BROKEN[proxyd-auth]=$NO_USERS; return 1; }
    if [ -z "${PID[proxyd]:-}" ] && ! start_peer proxyd; then
        BROKEN[proxyd-auth]="proxyd did not start: ${BROKEN[proxyd]}"
        return 1
    fi
    PID[proxyd-auth]=${PID[proxyd]}
    wait_port "$port" 5 || { BROKEN[proxyd-auth]="nothing listens on :$port"; unset 'PID[proxyd-auth]'; return 1; }
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -x "http://127.0.0.1:$port" "http://127.0.0.1:$ORIGIN_PORT/1k")
    if [ "$code" != 407 ]; then
        BROKEN[proxyd-auth]="a request without credentials answered $code, not 407"
        unset 'PID[proxyd-auth]'
        return 1
    fi
    run_first_contact
    code=$(peer_curl proxyd-auth "http://127.0.0.1:$ORIGIN_PORT/1k")
    if [ "$code" != 200 ]; then
        BROKEN[proxyd-auth]="a request with credentials answered $code"
        unset 'PID[proxyd-auth]'
        return 1
    fi
    return 0
}
peer_curl() {  # peer_curl PEER URL: prints the HTTP status through PEER
    case $1 in
        noproxy) curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$2" ;;
        proxyd-auth|proxyd-leases|proxyd-cluster) curl -s -o /dev/null -w '%{http_code}' --max-time 5 -U "$AUTH_USER:$AUTH_PASS" \
                         -x "http://127.0.0.1:${PORT[$1]}" "$2" ;;
        nginx) curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:${PORT[nginx]}/${2##*/}" ;;
        *) curl -s -o /dev/null -w '%{http_code}' --max-time 5 -x "http://127.0.0.1:${PORT[$1]}" "$2" ;;
    esac
}
stop_peer() {
    # proxyd-cluster's Redis goes with it, after it (its workers release first)
    if [ "$1" = proxyd-cluster ]; then stop_one proxyd-cluster; stop_one proxyd-cluster-redis; return 0; fi
    stop_one "$1"
}
stop_one() {
    local p=$1 root=${PID[$1]:-} i c
    # proxyd-parent's parent goes with its front
    [ "$p" = proxyd-parent ] && stop_one proxyd-parent-up
    # proxyd-auth's process is proxyd's: stopping proxyd stops it
    [ -z "$root" ] || [ "$p" = noproxy ] || [ "$p" = proxyd-auth ] && { unset 'PID[$p]'; return 0; }
    local all
    all=$(tree_pids "$root")
    kill -TERM "$root" 2>/dev/null
    for ((i = 0; i < 50; i++)); do kill -0 "$root" 2>/dev/null || break; sleep 0.1; done
    for c in $all; do kill -KILL "$c" 2>/dev/null; done
    wait "$root" 2>/dev/null
    unset 'PID[$p]'
    for ((i = 0; i < 50; i++)); do port_free "${PORT[$p]}" && break; sleep 0.1; done
}

version_of() {
    case $1 in
        proxyd|proxyd-*) "$PROXYD" -v 2>&1 | head -1 ;;
        nginx|noproxy) nginx -v 2>&1 | sed 's/.*version: //' ;;
        tinyproxy) tinyproxy -v 2>&1 | head -1 ;;
        squid) squid -v 2>&1 | head -1 | sed 's/Squid Cache: //' ;;
        privoxy) privoxy --version 2>&1 | head -1 | sed 's/ (.*//' ;;
        redis-server) redis-server --version 2>/dev/null | awk '{ print $3 }' | sed 's/^v=//' ;;
        wrk) wrk -v 2>&1 | head -1 | awk '{ print $1, $2 }' ;;
        gnuplot) gnuplot --version ;;
        curl) curl --version | head -1 | awk '{ print $1, $2 }' ;;
    esac
}

# ---------------------------------------------------------------- measurements
RAW=$W/raw.tsv   # test peer rep key=value...

# proxyd_dir PEER: the work dir of the proxyd process a proxyd row talks to
# (proxyd-auth: proxyd's; proxyd-parent: the front's); empty for other peers.
proxyd_dir() {
    case $1 in
        proxyd|proxyd-auth) echo "$W/proxyd" ;;
        proxyd-tuned|proxyd-rotate|proxyd-parent|proxyd-leases|proxyd-cluster) echo "$W/$1" ;;
    esac
}
proxyd_workers() {  # proxyd_workers DIR: one line per worker: pid requests total_sessions accepts
    timeout 3 "$PROXYCTL" -s "$1/proxyd.sock" --json workers 2>/dev/null |
        tr '{' '\n' | awk -F, '/"pid":/ {
            pid = req = ses = acc = 0
            for (i = 1; i <= NF; i++) {
                split($i, kv, ":"); gsub(/"/, "", kv[1])
                if (kv[1] == "pid") pid = kv[2]; else if (kv[1] == "requests") req = kv[2]
                else if (kv[1] == "total_sessions") ses = kv[2]; else if (kv[1] == "accepts") acc = kv[2]
            }
            print pid, req, ses, acc }'
}
worker_ticks() {  # worker_ticks ROOT: "pid ticks" for each child of that proxyd master
    local p
    for p in $(ps -o pid= --ppid "$1"); do
        echo "$p $(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null)"
    done
}
# spread A B: max/mean over workers of the per-worker delta of a column
spread() {  # spread BEFORE_FILE AFTER_FILE COLUMN
    awk -v col="$3" 'NR == FNR { b[$1] = $col; next } { d = $col - b[$1]; s += d; n++; if (d > m) m = d }
        END { if (n && s > 0) printf "%.2f", m / (s / n); else print "nan" }' "$1" "$2"
}

# run_wrk TEST PEER REP CONNS PATH CLOSE [SECONDS]
run_wrk() {
    local test=$1 peer=$2 rep=$3 conns=$4 file=$5 close=$6 dur=${7:-$DUR}
    local port=${PORT[$peer]} path host auth=""
    is_auth_peer "$peer" && auth=$AUTH_HEADER
    if [ "$peer" = noproxy ] || [ "$peer" = nginx ]; then
        path=/$file; host=127.0.0.1:$port
    else
        path=http://127.0.0.1:$ORIGIN_PORT/$file; host=127.0.0.1:$ORIGIN_PORT
    fi
    local roots=() out=$W/out/$test.$peer.$rep.txt
    read -ra roots <<<"$(peer_roots "$peer")"
    local oa0 ao0 t0 m0 oa1 ao1 t1 m1 log0=0
    [ "$peer" = proxyd-auth ] && log0=$(wc -l <"$W/proxyd/error.log" 2>/dev/null || echo 0)
    # a proxyd row: its workers' spread (proxyd-parent: the front's)
    local pdir
    pdir=$(proxyd_dir "$peer")
    if [ -n "$pdir" ]; then proxyd_workers "$pdir" >"$W/out/w0"; worker_ticks "${PID[$peer]}" >"$W/out/t0"; fi
    # proxyd-cluster: its Redis's own share, and what its workers asked of it
    local rt0=0 rt1=0 rc0=0 rc1=0 rf0=0 rf1=0 re0=0 re1=0
    if [ "$peer" = proxyd-cluster ]; then
        rc0=$(cluster_field commands); rf0=$(cluster_field fallbacks); re0=$(cluster_field errors)
        rt0=$(cpu_ticks "${PID[proxyd-cluster-redis]}")
    fi
    oa0=$(origin_accepts); ao0=$(tcp_active_opens); t0=$(cpu_ticks "${roots[@]}"); m0=$(machine_ticks)
    BENCH_PATH=$path BENCH_HOST=$host BENCH_CLOSE=$close BENCH_AUTH=$auth \
        timeout $((dur + 30)) wrk -t2 -c"$conns" -d"${dur}s" --timeout 5s -s "$W/wrk/bench.lua" \
        "http://127.0.0.1:$port" >"$out" 2>&1
    m1=$(machine_ticks); t1=$(cpu_ticks "${roots[@]}"); ao1=$(tcp_active_opens); oa1=$(origin_accepts)
    local extra=""
    if [ "$peer" = proxyd-cluster ]; then
        rt1=$(cpu_ticks "${PID[proxyd-cluster-redis]}")
        sleep 1.2   # the workers' counters reach the master with their heartbeat (1 s)
        rc1=$(cluster_field commands); rf1=$(cluster_field fallbacks); re1=$(cluster_field errors)
        extra="redis_ticks=$((rt1 - rt0)) redis_commands=$((${rc1:-0} - ${rc0:-0})) redis_fallbacks=$((${rf1:-0} - ${rf0:-0})) redis_errors=$((${re1:-0} - ${re0:-0}))"
    fi
    if [ -n "$pdir" ]; then
        proxyd_workers "$pdir" >"$W/out/w1"; worker_ticks "${PID[$peer]}" >"$W/out/t1"
        extra="$extra spread_req=$(spread "$W/out/w0" "$W/out/w1" 2) spread_sessions=$(spread "$W/out/w0" "$W/out/w1" 3) spread_cpu=$(spread "$W/out/t0" "$W/out/t1" 2)"
    fi
    # proxyd logs each refused authentication: which refusals this run got
    if [ "$peer" = proxyd-auth ]; then
        extra="$extra $(tail -n +$((log0 + 1)) "$W/proxyd/error.log" 2>/dev/null | awk '
            /authentication refused .*too many attempts pending/ { busy++ }
            /authentication failed/ { failed++ }
            END { printf "refused_429=%d refused_407=%d", busy, failed }')"
    fi
    local res
    res=$(grep '^RESULT' "$out" | tail -1)
    if [ -z "$res" ]; then
        log "$test $peer #$rep: wrk gave no result: $(tail -c 200 "$out" | tr '\n' ' ')"
        printf '%s\t%s\t%s\twrk_failed=1\n' "$test" "$peer" "$rep" >>"$RAW"
        return
    fi
    # origin accepts are upstream connections; every other new TCP connection
    # in the window was a client connection (for noproxy they are the same).
    local line
    line=$(echo "$res" | awk -v t=$((t1 - t0)) -v hz="$HZ" -v oa=$((oa1 - oa0)) -v ao=$((ao1 - ao0)) -v peer="$peer" \
        -v mb=$((${m1% *} - ${m0% *})) -v mt=$((${m1#* } - ${m0#* })) '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        req = v["requests"]; dur = v["duration_us"] / 1e6
        cpu_us = t * 1e6 / hz
        up = oa - 2; if (up < 0) up = 0; cl = ao - oa; if (cl < 0) cl = 0
        if (peer == "noproxy") { cl = up; up = 0 }
        # the whole machine: busy share of all CPUs, and busy CPU per request
        busy = mt ? mb / mt : 0; mcpu_us = mb * 1e6 / hz
        printf "rps=%.0f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f cpu_us_req=%.1f mbps=%.1f cpu_ms_100mb=%.1f errors=%d non2xx=%d client_conn_per_req=%.3f upstream_conn_per_req=%.3f requests=%d machine_busy=%.3f machine_cpu_us_req=%.1f",
            req / dur, v["p50_us"] / 1000, v["p99_us"] / 1000, v["max_us"] / 1000, req ? cpu_us / req : 0,
            v["bytes"] / dur / 1e6, v["bytes"] ? cpu_us / 1000 / (v["bytes"] / 1e8) : 0,
            v["e_connect"] + v["e_read"] + v["e_write"] + v["e_timeout"], v["e_status"],
            req ? cl / req : 0, req ? up / req : 0, req, busy, req ? mcpu_us / req : 0 }')
    # per request: Redis's CPU, and commands and fallbacks of the workers
    if [ "$peer" = proxyd-cluster ]; then
        extra="$extra $(echo "$line $extra" | awk -v hz="$HZ" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
            r = v["requests"]; printf "redis_cpu_us_req=%.1f redis_cmd_per_req=%.2f", r ? v["redis_ticks"] * 1e6 / hz / r : 0, r ? v["redis_commands"] / r : 0 }')"
    fi
    printf '%s\t%s\t%s\t%s %s\n' "$test" "$peer" "$rep" "$line" "$extra" >>"$RAW"
    log "$test $peer #$rep: $line $extra"
}

# run_first_contact: 50 keep-alive clients of one account arrive at once on
# proxyd-auth's cold credential caches (the first request of each needs a
# bcrypt hash on its worker). Measured once, for FIRST_CONTACT_S seconds
# whatever BENCH_DURATION is, and it leaves both workers' caches filled for
# the measured rows.
FIRST_CONTACT_S=5
run_first_contact() {
    run_wrk first50 proxyd-auth 1 50 1k 0 "$FIRST_CONTACT_S"
    sleep 0.5
}

# run_connect PEER REP: P parallel tunnels, each K sequential 16 MiB TLS downloads
CONNECT_PAR=4
CONNECT_SEQ=4
run_connect() {
    local peer=$1 rep=$2 roots=() out=$W/out/connect.$1.$2
    read -ra roots <<<"$(peer_roots "$peer")"
    local proxy=()
    [ "$peer" = noproxy ] || proxy=(-p -x "http://127.0.0.1:${PORT[$peer]}")
    local t0 s0 s1 t1 m0 m1 j jobs_=()
    rm -f "$out".*
    t0=$(cpu_ticks "${roots[@]}"); m0=$(machine_ticks); s0=$(date +%s%N)
    for ((j = 0; j < CONNECT_PAR; j++)); do
        ( for ((k = 0; k < CONNECT_SEQ; k++)); do
              curl -s -k "${proxy[@]}" --max-time 60 -o /dev/null -w '%{http_code} %{size_download}\n' \
                  "https://127.0.0.1:$ORIGIN_TLS_PORT/16m"
          done >"$out.$j" 2>&1 ) &
        jobs_+=($!)
    done
    wait_pids 200 "${jobs_[@]}"
    s1=$(date +%s%N); m1=$(machine_ticks); t1=$(cpu_ticks "${roots[@]}")
    local line
    line=$(cat "$out".* | awk -v ns=$((s1 - s0)) -v t=$((t1 - t0)) -v hz="$HZ" -v n=$((CONNECT_PAR * CONNECT_SEQ)) \
        -v mb=$((${m1% *} - ${m0% *})) -v mt=$((${m1#* } - ${m0#* })) '
        $1 == 200 && $2 == 16777216 { ok++; bytes += $2; next } { bad++ }
        END { bad += n - ok - bad; cpu_us = t * 1e6 / hz; mcpu_us = mb * 1e6 / hz
              printf "mbps=%.1f cpu_ms_100mb=%.1f errors=%d downloads=%d machine_busy=%.3f machine_cpu_ms_100mb=%.1f",
                  bytes / (ns / 1e9) / 1e6, bytes ? cpu_us / 1000 / (bytes / 1e8) : 0, bad, ok,
                  mt ? mb / mt : 0, bytes ? mcpu_us / 1000 / (bytes / 1e8) : 0 }')
    printf 'connect\t%s\t%s\t%s\n' "$peer" "$rep" "$line" >>"$RAW"
    log "connect $peer #$rep: $line"
}
# run_one TEST PEER REP: one stream. ONE_N downloads of the 16 MiB file one
# after the other, each a curl process and connection of its own, as a user
# would make it: one16m is plain HTTP (absolute-form GET through the proxy;
# straight to nginx's or the origin's port for those two), connect1 is HTTPS
# from the TLS origin through a CONNECT tunnel (curl -p -x; no proxy: straight
# to the TLS origin). Each download's speed is curl's speed_download (bytes ÷
# the whole transfer time, connection, tunnel and TLS handshake included); the
# repetition's figure is their median. The parallel rows (get16m, connect)
# hide what one stream costs, which is what a single user sees.
run_one() {
    local test=$1 peer=$2 rep=$3 out=$W/out/$1.$2.$3 roots=() url args=() k t0 t1
    read -ra roots <<<"$(peer_roots "$peer")"
    case $test/$peer in
        one16m/noproxy) url=http://127.0.0.1:$ORIGIN_PORT/16m ;;
        one16m/nginx) url=http://127.0.0.1:${PORT[nginx]}/16m ;;
        one16m/*) url=http://127.0.0.1:$ORIGIN_PORT/16m; args=(-x "http://127.0.0.1:${PORT[$peer]}") ;;
        connect1/noproxy) url=https://127.0.0.1:$ORIGIN_TLS_PORT/16m; args=(-k) ;;
        connect1/*) url=https://127.0.0.1:$ORIGIN_TLS_PORT/16m; args=(-k -p -x "http://127.0.0.1:${PORT[$peer]}") ;;
    esac
    t0=$(cpu_ticks "${roots[@]}")
    for ((k = 0; k < ONE_N; k++)); do
        curl -s "${args[@]}" --max-time 30 -o /dev/null -w '%{http_code} %{size_download} %{speed_download}\n' "$url"
    done >"$out" 2>&1
    t1=$(cpu_ticks "${roots[@]}")
    local line
    line=$(sort -k3 -g "$out" | awk -v t=$((t1 - t0)) -v hz="$HZ" -v n="$ONE_N" '
        $1 == 200 && $2 == 16777216 { s[++ok] = $3; bytes += $2; next } { bad++ }
        END { bad = n - ok; cpu_us = t * 1e6 / hz
              med = ok ? ((ok % 2) ? s[(ok + 1) / 2] : (s[ok / 2] + s[ok / 2 + 1]) / 2) : 0
              printf "mbps=%.1f mbps_lo=%.1f mbps_hi=%.1f cpu_ms_100mb=%.1f errors=%d downloads=%d",
                  med / 1e6, ok ? s[1] / 1e6 : 0, ok ? s[ok] / 1e6 : 0, bytes ? cpu_us / 1000 / (bytes / 1e8) : 0, bad, ok }')
    printf '%s\t%s\t%s\t%s\n' "$test" "$peer" "$rep" "$line" >>"$RAW"
    log "$test $peer #$rep: $line"
}
wait_pids() {  # wait_pids SECONDS PID...: wait for these, kill what is left after SECONDS
    local limit=$1 i p alive
    shift
    for ((i = 0; i < limit * 10; i++)); do
        alive=0
        for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in "$@"; do
        for c in $(tree_pids "$p"); do kill -KILL "$c" 2>/dev/null; done
        wait "$p" 2>/dev/null
    done
}

# run_tunnels PEER N: memory per held idle CONNECT tunnel. The holders run
# as several processes of at most HOLD_CHUNK tunnels each (2 fds per tunnel:
# client side and sink side), each with its own sink port.
HOLD_CHUNK=5000
run_tunnels() {
    local peer=$1 n=$2 out=$W/out/tunnels.$1.$2 r0 r1 i k chunks left m hp
    local holders=()
    sleep 1
    local roots=()
    read -ra roots <<<"$(peer_roots "$peer")"
    r0=$(rss_kib "${roots[@]}")
    chunks=$(((n + HOLD_CHUNK - 1) / HOLD_CHUNK)); left=$n
    for ((k = 0; k < chunks; k++)); do
        m=$((left / (chunks - k))); left=$((left - m))
        : >"$out.$k"
        "$W/tunnel_hold" "${PORT[$peer]}" "$((SINK_PORT + k))" "$m" 128 150 >"$out.$k" 2>&1 &
        hp=$!; holders+=("$hp"); BG_PIDS+=("$hp")
    done
    for ((i = 0; i < 1800; i++)); do
        local ready=0
        for ((k = 0; k < chunks; k++)); do
            grep -q '^READY' "$out.$k" || ! kill -0 "${holders[$k]}" 2>/dev/null && ready=$((ready + 1))
        done
        [ $ready = "$chunks" ] && break
        sleep 0.1
    done
    sleep 2
    r1=$(rss_kib "${roots[@]}")
    for hp in "${holders[@]}"; do kill -TERM "$hp" 2>/dev/null; done
    wait_pids 10 "${holders[@]}"
    local line
    line=$(cat "$out".* | awk -v r0="$r0" -v r1="$r1" -v n="$n" '
        /^READY/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] += kv[2]; if (kv[1] == "elapsed_ms" && kv[2] > t) t = kv[2] } }
        /^DONE/  { for (i = 2; i <= NF; i++) { split($i, kv, "="); d[kv[1]] += kv[2] } }
        END { e = v["established"] + 0
              printf "tunnels=%d established=%d failed=%d alive=%d rss_before_kib=%d rss_after_kib=%d kib_per_tunnel=%.2f setup_ms=%d",
                  n, e, n - e, d["alive"] + 0, r0, r1, e ? (r1 - r0) / e : 0, t }')
    printf 'tunnels%d\t%s\t1\t%s\n' "$n" "$peer" "$line" >>"$RAW"
    log "tunnels $n $peer: $line"
}

# profile: perf of one proxyd worker under keep-alive load
run_profile() {
    command -v perf >/dev/null || { log "perf not installed: no profile"; return; }
    local ws out=$W/out/profile
    ws=$(ps -o pid= --ppid "${PID[proxyd]}" | awk '{ printf "%s%s", sep, $1; sep = "," }')
    [ -n "$ws" ] || return
    BENCH_PATH=http://127.0.0.1:$ORIGIN_PORT/1k BENCH_HOST=127.0.0.1:$ORIGIN_PORT BENCH_CLOSE=0 \
        timeout 60 wrk -t2 -c50 -d12s -s "$W/wrk/bench.lua" "http://127.0.0.1:${PORT[proxyd]}" >"$out.wrk" 2>&1 &
    local wp=$!
    sleep 2
    # both workers: the accept spread decides which one carries the load
    timeout 30 perf record -e cpu-clock -F 2000 -g -p "$ws" -o "$out.data" -- sleep 8 >"$out.log" 2>&1
    wait "$wp" 2>/dev/null
    timeout 120 perf report -i "$out.data" --no-children --sort symbol --stdio -g none --percent-limit 0.2 \
        2>/dev/null | grep -E '^ +[0-9]' | sed 's/ *-* *-* *$//; s/  */ /g' >"$out.all"
    head -15 "$out.all" >"$out.top"
    grep -v '\[k\]' "$out.all" | head -15 >"$out.user"
    timeout 120 perf report -i "$out.data" --no-children --sort dso --stdio -g none 2>/dev/null |
        grep -E '^ +[0-9]' | sed 's/ *$//' | head -8 >"$out.dso"
    log "profile: $(wc -l <"$out.all") symbols above 0.2 %"
}

# ---------------------------------------------------------------- main
main() {
    ulimit -n 1048576 2>/dev/null || ulimit -n 262144 2>/dev/null || ulimit -n "$(ulimit -Hn)"
    need_install
    for c in nginx wrk curl openssl g++; do command -v $c >/dev/null || die "$c is required"; done
    [ -x "$PROXYD" ] || make -C "$ROOT" build >&2 || die "cannot build proxyd"
    setup_workdir
    write_configs
    : >"$RAW"
    start_origin
    log "origin on :$ORIGIN_PORT (http) and :$ORIGIN_TLS_PORT (tls); ulimit -n $(ulimit -n)"

    local p active=()
    for p in $PEERS; do
        [ -n "${PORT[$p]:-}" ] || { BROKEN[$p]="unknown peer"; continue; }
        case $p in noproxy|proxyd|proxyd-*) ;; *)
            command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || { BROKEN[$p]="not installed"; continue; } ;;
        esac
        if start_peer "$p"; then active+=("$p"); log "$p up on :${PORT[$p]} (pid ${PID[$p]})${PID[$p-redis]:+, its Redis on :${PORT[$p-redis]} (pid ${PID[$p-redis]})}"
        else log "$p: ${BROKEN[$p]}"; fi
    done

    # Throughput tests: for each test, repetitions interleaved A B C A B C ...
    local rep test
    for test in "ka50 50 1k 0" "ka200 200 1k 0" "close50 50 1k 1" "get16m 4 16m 0"; do
        # shellcheck disable=SC2086  # the test's fields, split on purpose
        set -- $test
        for ((rep = 1; rep <= REPS; rep++)); do
            for p in "${active[@]}"; do
                is_auth_peer "$p" && [[ " $AUTH_TESTS " != *" $1 "* ]] && continue
                run_wrk "$1" "$p" "$rep" "$2" "$3" "$4"; sleep 0.5
            done
        done
    done
    for ((rep = 1; rep <= REPS; rep++)); do
        for p in "${active[@]}"; do
            # a reverse proxy has no CONNECT; the authenticated rows have the throughput rows only
            [ "$p" = nginx ] || is_auth_peer "$p" && continue
            [ -n "${TUNNEL_BROKEN[$p]:-}" ] && continue
            run_connect "$p" "$rep"; sleep 0.5
        done
    done
    # One stream: plain HTTP for every peer but the authenticated ones, HTTPS
    # through CONNECT for every forward proxy whose CONNECT works
    for ((rep = 1; rep <= REPS; rep++)); do
        for p in "${active[@]}"; do
            is_auth_peer "$p" && continue
            run_one one16m "$p" "$rep"
            [ "$p" = nginx ] || [ -n "${TUNNEL_BROKEN[$p]:-}" ] && continue
            run_one connect1 "$p" "$rep"
        done
    done
    if [ "$PROFILE" = 1 ] && [ -n "${PID[proxyd]:-}" ]; then run_profile; fi
    for p in "${active[@]}"; do stop_peer "$p"; done
    stop_peer proxyd   # started for proxyd-auth alone

    # Memory per idle tunnel: each proxy fresh for each count. A one-process
    # proxy needs 2 fds per tunnel; when the hard RLIMIT_NOFILE (which root
    # without CAP_SYS_RESOURCE cannot raise) is too low for a count, the
    # largest count that fits is measured instead, and the report says so.
    local n counts="" fdmax
    fdmax=$(ulimit -n)
    for n in $TUNNELS; do
        if [ $((2 * n + 500)) -gt "$fdmax" ]; then
            local fit=$(((fdmax - 500) / 2 / 1000 * 1000))
            NOTE[tunnels]="${NOTE[tunnels]:-}$n tunnels need $((2 * n)) fds in a one-process proxy, but RLIMIT_NOFILE is capped at $fdmax on this machine (hard limit, not raisable here); measured $fit instead. "
            n=$fit
        fi
        case " $counts " in *" $n "*) ;; *) counts="$counts $n" ;; esac
    done
    for p in "${active[@]}"; do
        case $p in nginx|noproxy) continue ;; esac
        is_auth_peer "$p" && continue
        [ -n "${TUNNEL_BROKEN[$p]:-}" ] && continue
        for n in $counts; do
            if start_peer "$p"; then run_tunnels "$p" "$n"; stop_peer "$p"; fi
        done
    done

    ELAPSED=$(($(date +%s) - STARTED_AT))
    # what report.sh needs when re-run alone on this work dir
    { declare -p BROKEN NOTE TUNNEL_BROKEN SETTINGS | sed 's/^declare -A/declare -gA/'; echo "ELAPSED=$ELAPSED REPS=$REPS DUR=$DUR BENCH_PORT_BASE=$BASE FIRST_CONTACT_S=$FIRST_CONTACT_S ONE_N=$ONE_N"
      echo "ROTATE_SOURCES='$ROTATE_SOURCES' LEASE_LIMIT=$LEASE_LIMIT"
      echo "LOAD_START='$LOAD_START' LOAD_END='$(cut -d" " -f1-3 /proc/loadavg)'"; } >"$W/meta.sh"
    report
    chart
    log "done in ${ELAPSED}s: $HERE/RESULTS.md, $HERE/results.png"
}

# shellcheck source=bench/report.sh
. "$HERE/report.sh"
main "$@"
