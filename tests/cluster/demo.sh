#!/bin/bash
# The cluster demonstration (make cluster-demo; make test runs it with
# SIZE=small): a real redis-server, two parent proxies, proxyd nodes and a
# real HAProxy in front of them (TCP mode, send-proxy-v2, health checks),
# all on loopback, with the configuration files of conf/cluster/. It shows,
# each with PASS or FAIL:
#
#   (a) a per-user limit of N concurrent sessions held across the nodes;
#   (b) a destination_rate budget shared by the nodes, not one per node;
#   (c) sticky routes: a session ID keeps its parent on every node, even
#       after it moved away from a failed parent that came back since;
#   (d) a node killed under load (all its processes stopped, then
#       SIGKILLed, as when its machine dies): HAProxy takes it out, the load
#       goes on through the others, and the dead node's leases count until
#       they expire, within the bound.
#
# Exits 0 when every demonstration passed, 1 when one failed, 77 when
# haproxy or redis-server is missing (make deps installs them). Every
# process it starts is stopped on exit, on error and on Ctrl-C; every wait
# has a timeout. KEEP=1 keeps the temp dir (configs and logs) afterwards; it
# is kept anyway when something failed.
#
# Environment: SIZE=full|small, BUILD (build), PROXYD, PROXYCTL (the
# binaries, default $BUILD/proxyd and $BUILD/proxyctl), LEASE_BOUND (the
# seconds within which a dead node's leases must expire, 10: README.md,
# "Running a cluster"), CLUSTER_CONF (the templates, conf/cluster), KEEP.
set -u
set -o pipefail

cd "$(dirname "$0")/../.." || exit 1
CONF=${CLUSTER_CONF:-conf/cluster}
BUILD=${BUILD:-build}
PROXYD=${PROXYD:-$BUILD/proxyd}
PROXYCTL=${PROXYCTL:-$BUILD/proxyctl}
SIZE=${SIZE:-full}
LEASE_BOUND=${LEASE_BOUND:-10}

case $SIZE in
full)
    NODES=3 WORKERS=2 ALICE_MAX=4 ALICE_EXTRA=3 BUDGET_OFFERED=45 STICKY_IDS=4
    LOAD_LOOPS=6 LOAD_SECONDS=5
    ;;
small)
    NODES=2 WORKERS=1 ALICE_MAX=3 ALICE_EXTRA=2 BUDGET_OFFERED=24 STICKY_IDS=2
    LOAD_LOOPS=2 LOAD_SECONDS=2
    ;;
*)
    echo "demo.sh: SIZE must be full or small, not '$SIZE'" >&2
    exit 2
    ;;
esac
# The budget of one destination host by one parent, across the cluster.
RATE=5 BURST=5
# The load and the tunnels of (a) go to these hosts (addresses of the
# origin), round robin, so no host's budget is the limit there; (b) uses
# 127.0.0.1 alone.
LOAD_HOSTS=()
for i in $(seq 101 116); do LOAD_HOSTS+=("127.0.0.$i"); done

# Debian installs haproxy in /usr/sbin, which is not in a user's PATH.
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
if [ ! -x "$HAPROXY" ]; then
    echo "demo.sh: skipped: haproxy is not installed (make deps installs it)"
    exit 77
fi
for tool in redis-server redis-cli curl base64 pgrep; do
    if ! command -v "$tool" >/dev/null; then
        echo "demo.sh: skipped: $tool is not installed (make deps installs it)"
        exit 77
    fi
done
for bin in "$PROXYD" "$PROXYCTL"; do
    [ -x "$bin" ] || { echo "demo.sh: $bin is not built (make)" >&2; exit 1; }
done

TMP=$(mktemp -d /tmp/proxyd-cluster-demo.XXXXXX) || exit 1
STARTED=()   # pids of every server process started here (killed at exit)
LOOPS=()     # pids of the background load loops
FAILURES=0
TUNNELS=()   # fds of the tunnels open now

min() { echo $(($1 < $2 ? $1 : $2)); }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
say() { printf '%s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }
result() {  # $1 = PASS|FAIL, then what
    local verdict=$1; shift
    printf '   %s: %s\n' "$verdict" "$*"
    [ "$verdict" = PASS ] || FAILURES=$((FAILURES + 1))
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    close_tunnels
    local pid
    # A load loop's curl first (it would finish its request, up to 5 s).
    for pid in "${LOOPS[@]}"; do pkill -TERM -P "$pid" 2>/dev/null; kill "$pid" 2>/dev/null; done
    # Servers: a polite stop first, then SIGKILL what is left after 5 s. A
    # proxyd master's workers go with it (and exit on their own within 2 s
    # when it was killed).
    for pid in "${STARTED[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    local deadline=$(($(date +%s) + 5))
    for pid in "${STARTED[@]}" "${LOOPS[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    wait 2>/dev/null
    if [ "${KEEP:-0}" = 1 ] || [ "$FAILURES" != 0 ] || [ "$status" != 0 ]; then
        say "logs and configs kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'say "interrupted"; exit 130' INT TERM

# wait_until SECONDS COMMAND...: polls COMMAND every 100 ms; false on timeout.
wait_until() {
    local deadline=$(($(now_ms) + $1 * 1000)); shift
    until "$@"; do
        [ "$(now_ms)" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# A loopback port nothing listens on (from below the kernel's ephemeral
# range, so no outgoing connection holds it). Another program may take it
# before ours binds it: starters try a few.
pick_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 12000))
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
    done
}

# render TEMPLATE OUT TOKEN=VALUE...: the template with each @TOKEN@ replaced.
render() {
    local template=$1 out=$2; shift 2
    local args=() pair
    for pair in "$@"; do args+=(-e "s|@${pair%%=*}@|${pair#*=}|g"); done
    sed "${args[@]}" "$template" >"$out"
    if grep -n '@[A-Z_]*@' "$out" >&2; then
        say "render: tokens left in $out" >&2
        return 1
    fi
}

fatal() {
    say "demo.sh: $*" >&2
    FAILURES=$((FAILURES + 1))
    exit 1
}

# --- Redis -------------------------------------------------------------------

start_redis() {
    mkdir -p "$TMP/redis"
    for _ in 1 2 3 4 5; do
        REDIS_PORT=$(pick_port)
        render "$CONF/redis.conf" "$TMP/redis/redis.conf" "REDIS_PORT=$REDIS_PORT" || return 1
        (cd "$TMP/redis" && exec redis-server ./redis.conf >redis.log 2>&1) &
        REDIS_PID=$!
        STARTED+=("$REDIS_PID")
        if wait_until 10 redis_ready; then return 0; fi
        kill -KILL "$REDIS_PID" 2>/dev/null
    done
    tail -5 "$TMP/redis/redis.log" >&2
    return 1
}
redis_ready() {
    kill -0 "$REDIS_PID" 2>/dev/null || return 0  # dead: stop waiting
    [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

# --- proxyd instances (parents and nodes) ------------------------------------

# Pids of the master of instance NAME (a directory under $TMP) and its
# workers.
declare -A MASTER PORT
ctl() {  # ctl NAME ARGS...: proxyctl on instance NAME's control socket
    local name=$1; shift
    timeout 10 "$PROXYCTL" -s "$TMP/$name/proxyd.sock" "$@" 2>/dev/null
}
# The port of [listen main], once every worker of NAME runs; empty before.
listener_port() {
    ctl "$1" status | sed -n 's/^listener main: [0-9.]*:\([0-9]*\).*/\1/p'
}
instance_ready() {  # NAME WORKERS
    kill -0 "${MASTER[$1]}" 2>/dev/null || return 0  # dead: stop waiting
    local running
    running=$(ctl "$1" --json workers | grep -o '"state":"running"' | wc -l)
    [ "$running" -ge "$2" ] && [ -n "$(listener_port "$1")" ]
}
# start_instance NAME CONFIG WORKERS: runs the rendered config in the
# foreground; false when it is not serving within 20 s.
start_instance() {
    local name=$1 config=$2 workers=$3
    "$PROXYD" -c "$config" >"$TMP/$name/stdout.log" 2>&1 &
    MASTER[$name]=$!
    STARTED+=("${MASTER[$name]}")
    if ! wait_until 20 instance_ready "$name" "$workers" || ! kill -0 "${MASTER[$name]}" 2>/dev/null; then
        say "$name did not start; its log:" >&2
        tail -5 "$TMP/$name/stdout.log" "$TMP/$name/error.log" >&2 2>/dev/null
        return 1
    fi
    PORT[$name]=$(listener_port "$name")
}

render_parent() {  # NAME PORT
    render "$CONF/parent.conf" "$TMP/$1/proxyd.conf" "DIR=$TMP/$1" "NAME=$1" "PORT=$2"
}
start_parent() {  # NAME
    mkdir -p "$TMP/$1"
    render_parent "$1" 0 && start_instance "$1" "$TMP/$1/proxyd.conf" 1 || return 1
    # Fixed from now on: a restart must come back on the port the nodes know.
    render_parent "$1" "${PORT[$1]}"
}
stop_instance() {  # NAME: SIGTERM, waited for (bounded)
    kill -TERM "${MASTER[$1]}" 2>/dev/null
    wait_until 10 eval "! kill -0 ${MASTER[$1]} 2>/dev/null"
}

start_node() {  # NAME
    local name=$1
    mkdir -p "$TMP/$name"
    render "$CONF/node.conf" "$TMP/$name/proxyd.conf" "DIR=$TMP/$name" "NODE=$name" "PORT=0" \
        "WORKERS=$WORKERS" "REDIS_PORT=$REDIS_PORT" "USERS=$(cd "$CONF" && pwd)/users" \
        "ALICE_MAX=$ALICE_MAX" "EAST_PORT=${PORT[east]}" "WEST_PORT=${PORT[west]}" \
        "RATE=$RATE" "BURST=$BURST" || return 1
    start_instance "$name" "$TMP/$name/proxyd.conf" "$WORKERS"
}

# --- HAProxy (the balancer, and the origin in the same process) ---------------

start_haproxy() {
    mkdir -p "$TMP/haproxy"
    local servers="" name addresses host
    for name in "${NODE_NAMES[@]}"; do
        servers+="    server $name 127.0.0.1:${PORT[$name]}\\n"
    done
    for _ in 1 2 3 4 5; do
        FRONTEND_PORT=$(pick_port) STATS_PORT=$(pick_port) ORIGIN_PORT=$(pick_port)
        addresses="127.0.0.1:$ORIGIN_PORT"
        for host in "${LOAD_HOSTS[@]}"; do addresses+=",$host:$ORIGIN_PORT"; done
        sed "s|^@SERVERS@\$|${servers%\\n}|" "$CONF/haproxy.cfg" >"$TMP/haproxy/haproxy.cfg.in"
        render "$TMP/haproxy/haproxy.cfg.in" "$TMP/haproxy/haproxy.cfg" \
            "FRONTEND_PORT=$FRONTEND_PORT" "STATS_PORT=$STATS_PORT" || return 1
        render "$CONF/origin.cfg" "$TMP/haproxy/origin.cfg" "ORIGIN_ADDRESSES=$addresses" || return 1
        "$HAPROXY" -c -q -f "$TMP/haproxy/haproxy.cfg" -f "$TMP/haproxy/origin.cfg" || return 1
        "$HAPROXY" -db -f "$TMP/haproxy/haproxy.cfg" -f "$TMP/haproxy/origin.cfg" \
            >"$TMP/haproxy/haproxy.log" 2>&1 &
        HAPROXY_PID=$!
        STARTED+=("$HAPROXY_PID")
        if wait_until 15 all_nodes_up && kill -0 "$HAPROXY_PID" 2>/dev/null; then return 0; fi
        kill -KILL "$HAPROXY_PID" 2>/dev/null
    done
    tail -5 "$TMP/haproxy/haproxy.log" >&2
    return 1
}
# HAProxy's status of node NAME (UP, DOWN, "UP 1/2"...), from its stats CSV.
node_status() {
    curl -s --max-time 5 "http://127.0.0.1:$STATS_PORT/;csv" |
        awk -F, -v n="$1" '$1 == "proxyd_nodes" && $2 == n { print $18 }'
}
all_nodes_up() {
    kill -0 "$HAPROXY_PID" 2>/dev/null || return 0  # dead: stop waiting
    local name
    for name in "${NODE_NAMES[@]}"; do [ "$(node_status "$name")" = UP ] || return 1; done
}
node_down() { [ "$(node_status "$1")" = DOWN ]; }

# --- Clients -------------------------------------------------------------------

declare -A PASSWORD=([alice]=alice-demo [bob]=bob-demo)
# USER (with its parameters, alice-session-x) -> its Basic credentials,
# computed once: a burst of tunnels must not wait for a base64 process each.
declare -A CREDENTIALS
credentials() {
    if [ -z "${CREDENTIALS[$1]:-}" ]; then
        CREDENTIALS[$1]=$(printf '%s:%s' "$1" "${PASSWORD[${1%%-*}]}" | base64 -w0)
    fi
}

# One GET through the balancer on a new connection; prints the origin's
# body ("peer=... via=...") and the status, or "000" when it failed.
get() {  # USER URL
    curl -s --max-time 10 -x "http://127.0.0.1:$FRONTEND_PORT" \
        --proxy-user "$1:${PASSWORD[${1%%-*}]}" -w '%{http_code}' "$2" 2>/dev/null
}

# Tunnels over bash's /dev/tcp: nothing to spawn per connection, so many
# open at once. send_connect USER HOST: opens a connection to the balancer
# and writes a CONNECT to HOST's origin port; the fd is appended to TUNNELS.
send_connect() {
    local fd
    credentials "$1"
    exec {fd}<>"/dev/tcp/127.0.0.1/$FRONTEND_PORT" || return 1
    printf 'CONNECT %s:%s HTTP/1.1\r\nHost: %s:%s\r\nProxy-Authorization: Basic %s\r\n\r\n' \
        "$2" "$ORIGIN_PORT" "$2" "$ORIGIN_PORT" "${CREDENTIALS[$1]}" >&"$fd"
    TUNNELS+=("$fd")
}
# read_answer FD: reads the answer to the CONNECT on FD: its status in
# ANSWER ("000" when none came within 10 s) and a refusal's Proxy-Status in
# ANSWER_WHY. A refused tunnel's fd is closed (and is "-" in TUNNELS).
read_answer() {
    local fd=$1 line
    ANSWER=000 ANSWER_WHY=""
    if IFS= read -r -t 10 -u "$fd" line; then
        # No fork per answer: a burst's answers are read as fast as they came.
        ANSWER=${line#* } ANSWER=${ANSWER%% *}
        while IFS= read -r -t 10 -u "$fd" line && [ "$line" != $'\r' ]; do
            case $line in [Pp]roxy-[Ss]tatus:*) ANSWER_WHY=${line#*: } ;; esac
        done
    fi
    ANSWER_WHY=${ANSWER_WHY%$'\r'}
    [ "$ANSWER" = 200 ] || close_fd "$fd"
}
close_fd() {
    local i fd=$1
    for i in "${!TUNNELS[@]}"; do
        if [ "${TUNNELS[$i]}" = "$1" ]; then TUNNELS[i]=-; fi
    done
    exec {fd}>&- 2>/dev/null || true
}
close_tunnels() {
    local fd
    for fd in "${TUNNELS[@]}"; do [ "$fd" = - ] || exec {fd}>&-; done
    TUNNELS=()
}
# Is the tunnel on FD still open? (EOF: the node holding it is gone.)
tunnel_open() {
    IFS= read -r -t 0.2 -n 1 -u "$1" _
    [ $? -gt 128 ]  # timed out: still open and silent
}

# Sessions open on each node ("node1=2 node2=1"; "-" for a dead one),
# from each node's stats. Workers report at each heartbeat (1 s): waits up
# to 3 s for the total to reach WANT.
sessions_by_node() {  # WANT
    local name out total deadline=$(($(now_ms) + 3000)) count
    while :; do
        out="" total=0
        for name in "${NODE_NAMES[@]}"; do
            count=$(ctl "$name" --json stats | grep -o '"active_sessions":[0-9]*' | cut -d: -f2)
            out+="$name=${count:--} " total=$((total + ${count:-0}))
        done
        if [ "$total" -ge "$1" ] || [ "$(now_ms)" -ge "$deadline" ]; then break; fi
        sleep 0.2
    done
    echo "${out% }"
}

# --- The demonstrations ----------------------------------------------------------

# (a) alice may hold ALICE_MAX sessions. ALICE_MAX + ALICE_EXTRA tunnels,
# one after the other, each on a new connection to the balancer, which
# spreads them over the nodes: exactly ALICE_MAX get through, wherever they
# landed, and the others get 429 naming the limit.
demo_user_limit() {
    local total=$((ALICE_MAX + ALICE_EXTRA)) i admitted=0 refused=0 other=0 why=""
    step "(a) per-user limit: alice may hold $ALICE_MAX sessions; she opens $total tunnels through the balancer"
    for ((i = 0; i < total; i++)); do
        send_connect alice "${LOAD_HOSTS[i % ${#LOAD_HOSTS[@]}]}" || { other=$((other + 1)); continue; }
        read_answer "${TUNNELS[-1]}"
        case $ANSWER in
        200) admitted=$((admitted + 1)) ;;
        429) refused=$((refused + 1)); why=$ANSWER_WHY ;;
        *) other=$((other + 1)) ;;
        esac
        say "   tunnel $((i + 1)): $ANSWER${ANSWER_WHY:+ ($ANSWER_WHY)}"
    done
    local spread
    spread=$(sessions_by_node "$ALICE_MAX")
    say "   sessions open per node: $spread"
    local nodes_used
    nodes_used=$(echo "$spread" | tr ' ' '\n' | grep -cvE '=(0|-)$')
    close_tunnels
    if [ "$admitted" = "$ALICE_MAX" ] && [ "$refused" = "$ALICE_EXTRA" ] && [ "$nodes_used" -ge 2 ]; then
        result PASS "$admitted admitted over $nodes_used nodes, $refused refused with 429: one limit for the cluster"
    else
        result FAIL "$admitted admitted, $refused refused, $other other, over $nodes_used nodes" \
            "(want $ALICE_MAX, $ALICE_EXTRA, 0, at least 2)${why:+; refusal: $why}"
    fi
}

# (b) The budget of one destination (127.0.0.1) by one parent: RATE per
# second, BURST at once. BUDGET_OFFERED tunnels to it are sent at once
# through the balancer, a third of them to each node; bob's session ID
# keeps them on one parent, so one budget counts them all. Admitted: at
# most BURST + RATE x the seconds it took (+1 for a refill at the edge),
# where a budget per node would let each node admit that much.
demo_budget() {
    local i admitted=0 refused=0 other=0 start elapsed_ms bound why=""
    step "(b) shared budget: destination_rate = $RATE/s, burst $BURST; $BUDGET_OFFERED tunnels to 127.0.0.1 at once, through every node"
    # Each worker verifies a password once (bcrypt, off its event loop) and
    # then remembers it: a round of requests elsewhere first, so that the
    # burst below is not spread out in time by the verifications.
    for ((i = 0; i < 2 * NODES * WORKERS; i++)); do
        get bob-session-budget "http://${LOAD_HOSTS[i % ${#LOAD_HOSTS[@]}]}:$ORIGIN_PORT/" >/dev/null
    done
    start=$(now_ms)
    for ((i = 0; i < BUDGET_OFFERED; i++)); do
        send_connect bob-session-budget 127.0.0.1 || other=$((other + 1))
    done
    local fds=("${TUNNELS[@]}") fd
    for fd in "${fds[@]}"; do
        read_answer "$fd"
        case $ANSWER in
        200) admitted=$((admitted + 1)) ;;
        429) refused=$((refused + 1)); why=$ANSWER_WHY ;;
        *) other=$((other + 1)) ;;
        esac
    done
    elapsed_ms=$(($(now_ms) - start))
    local spread
    spread=$(sessions_by_node "$admitted")
    close_tunnels
    bound=$((BURST + RATE * elapsed_ms / 1000 + 1))
    say "   admitted $admitted, refused $refused (429), other $other, in $elapsed_ms ms"
    say "   tunnels held per node: $spread"
    say "   ${why:+a refusal says: $why}"
    say "   one budget for the cluster admits at most $BURST + $RATE/s x ${elapsed_ms} ms + 1 = $bound;" \
        "a budget per node would admit up to $(min "$BUDGET_OFFERED" $((NODES * (bound - 1))))"
    if [ "$admitted" -ge "$BURST" ] && [ "$admitted" -le "$bound" ] && [ "$other" = 0 ]; then
        result PASS "$admitted admitted <= $bound: the nodes share the budget"
    else
        result FAIL "$admitted admitted (want $BURST..$bound), $other without an answer"
    fi
}

# The parent named in an origin body "peer=127.0.0.1 via=1.1 east": the
# parents put their name in Via.
parent_of() { sed -n 's/.*via=.*1\.1 \(east\|west\).*/\1/p' <<<"$1"; }
# The node whose access log has a request for PATH (workers write their
# log at least once a second: waits up to 5 s); "?" when none has.
served_by() {
    local path=$1 name deadline=$(($(now_ms) + 5000))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        for name in "${NODE_NAMES[@]}"; do
            if grep -q " $path HTTP/1.1\" 200 " "$TMP/$name/access.log" 2>/dev/null; then
                echo "$name"
                return
            fi
        done
        sleep 0.1
    done
    echo "?"
}
# One request of session ID USER through the balancer: sets NODE (from
# the nodes' access logs) and PARENT (from what the origin saw).
SERIAL=0
sticky_request() {  # USER
    local url="http://${LOAD_HOSTS[SERIAL % ${#LOAD_HOSTS[@]}]}:$ORIGIN_PORT/sticky/$1/$SERIAL"
    SERIAL=$((SERIAL + 1))
    PARENT=$(parent_of "$(get "$1" "$url")")
    PARENT=${PARENT:-?}
    NODE=$(served_by "$url")
}
# sticky_round USER: three requests; the nodes and parents in SEEN_NODES
# and SEEN_PARENTS (space-separated, in order).
sticky_round() {
    SEEN_NODES="" SEEN_PARENTS=""
    for _ in 1 2 3; do
        sticky_request "$1"
        SEEN_NODES+="$NODE " SEEN_PARENTS+="$PARENT "
    done
    SEEN_NODES=${SEEN_NODES% } SEEN_PARENTS=${SEEN_PARENTS% }
}
distinct() { tr ' ' '\n' <<<"$1" | sort -u | tr '\n' ' ' | sed 's/ $//'; }

# (c) Each session ID goes by one parent whichever node serves it: three
# requests per ID, one after the other, each on a new connection (the
# balancer sends them to different nodes). Then the strong case: the
# parent of one session is stopped; its next request moves to the other
# parent; the first parent comes back; every node keeps the session on the
# parent it moved to, though for the nodes that never saw the failure the
# first parent is up and is the one their hash proposes: the route comes
# from the shared sticky map.
demo_sticky() {
    step "(c) sticky routes: $STICKY_IDS session IDs, 3 requests each through the balancer"
    local id j ok=1
    declare -A home
    for ((j = 1; j <= STICKY_IDS; j++)); do
        id=bob-session-s$j
        sticky_round "$id"
        say "   $id: nodes $SEEN_NODES -> parents $SEEN_PARENTS"
        home[$id]=$(distinct "$SEEN_PARENTS")
        local nodes
        nodes=$(distinct "$SEEN_NODES")
        if [[ ${home[$id]} == *" "* || ${home[$id]} == "?" || $nodes != *" "* || $nodes == *"?"* ]]; then
            ok=0
        fi
    done
    if [ "$ok" = 1 ]; then
        result PASS "each session ID kept one parent on every node that served it"
    else
        result FAIL "a session ID changed parent across nodes (or one node served all)"
    fi

    id=bob-session-s1
    local first=${home[$id]} other
    case $first in
    east) other=west ;;
    west) other=east ;;
    *) result FAIL "no single parent for $id"; return ;;
    esac
    say "   $id goes by $first; stopping parent $first"
    stop_instance "$first" || { result FAIL "parent $first did not stop"; return; }
    sticky_request "$id"
    local moved_by=$NODE moved_to=$PARENT
    say "   $id while $first is down: node $NODE -> parent $PARENT"
    start_instance "$first" "$TMP/$first/proxyd.conf" 1 || { result FAIL "parent $first did not restart"; return; }
    say "   parent $first is back on its port"
    sticky_round "$id"
    say "   $id now: nodes $SEEN_NODES -> parents $SEEN_PARENTS"
    local node others_served=0
    for node in $SEEN_NODES; do [ "$node" = "$moved_by" ] || others_served=1; done
    if [ "$moved_to" = "$other" ] && [ "$(distinct "$SEEN_PARENTS")" = "$other" ] &&
        [ "$others_served" = 1 ]; then
        result PASS "the session moved to $other on $moved_by and stays there on every node"
    else
        result FAIL "after the move: want $other on every node, some other than $moved_by"
    fi
}

# A background load: LOAD_LOOPS loops of GETs through the balancer as bob
# (no session ID), each on a new connection, over the load hosts. Each loop
# writes "MILLISECONDS STATUS" per request to its file, until $TMP/load.stop.
start_load() {
    rm -f "$TMP/load.stop"
    local i
    for ((i = 0; i < LOAD_LOOPS; i++)); do
        (
            n=$i
            while [ ! -e "$TMP/load.stop" ]; do
                host=${LOAD_HOSTS[n % ${#LOAD_HOSTS[@]}]}
                n=$((n + 1))
                code=$(curl -s -o /dev/null --max-time 5 -x "http://127.0.0.1:$FRONTEND_PORT" \
                    --proxy-user "bob:${PASSWORD[bob]}" -w '%{http_code}' "http://$host:$ORIGIN_PORT/")
                echo "$(now_ms) ${code:-000}"
                # Paced, so that no host's budget is what refuses it.
                sleep 0.05
            done
        ) >"$TMP/load.$i" 2>/dev/null &
        LOOPS+=($!)
    done
}
stop_load() {
    touch "$TMP/load.stop"
    local pid deadline=$(($(date +%s) + 15))
    for pid in "${LOOPS[@]}"; do
        while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null
    done
    LOOPS=()
}
# count_load FROM TO: "ok errors" of the load's requests that ended in [FROM, TO) ms.
count_load() {
    cat "$TMP"/load.[0-9]* | awk -v from="$1" -v to="$2" \
        '$1 >= from && $1 < to { if ($2 == 200) ok++; else bad++ } END { print ok + 0, bad + 0 }'
}

# (d) alice holds ALICE_MAX tunnels over the nodes; load runs; the node
# holding most of them is killed (SIGSTOP, then SIGKILL, to its master and
# workers). HAProxy's checks take it out; the load goes on through the
# others with errors for the requests that were inside the dead node only;
# alice's tunnels on the dead node are gone, and the sessions they held
# count until the dead node's leases expire.
demo_kill() {
    local i spread pair victim="" most=0
    step "(d) a node killed under load (SIGSTOP, then SIGKILL, to its master and workers)"
    for ((i = 0; i < ALICE_MAX; i++)); do
        send_connect alice "${LOAD_HOSTS[i]}" && read_answer "${TUNNELS[-1]}"
        [ "$ANSWER" = 200 ] || { result FAIL "alice's tunnel $((i + 1)) got $ANSWER before the kill"; return; }
    done
    spread=$(sessions_by_node "$ALICE_MAX")
    say "   alice holds $ALICE_MAX tunnels: $spread"
    for pair in $spread; do
        if [ "${pair#*=}" != - ] && [ "${pair#*=}" -gt "$most" ]; then victim=${pair%=*} most=${pair#*=}; fi
    done
    victim=${victim:-${NODE_NAMES[0]}}
    start_load
    sleep "$LOAD_SECONDS"
    local pids killed_at
    pids="${MASTER[$victim]} $(pgrep -P "${MASTER[$victim]}" | tr '\n' ' ')"
    killed_at=$(now_ms)
    # Stopped first, all of them, then killed: a node that dies with its
    # machine. (SIGKILL to the master and then to the workers would let a
    # worker see the master's end in between and exit cleanly, giving its
    # leases back at once.)
    # shellcheck disable=SC2086 # one word per pid
    kill -STOP $pids
    # shellcheck disable=SC2086
    kill -KILL $pids
    wait "${MASTER[$victim]}" 2>/dev/null  # reaped here: no "Killed" note from bash
    say "   killed $victim (pids ${pids% })"
    local down_ms="never"
    if wait_until 10 node_down "$victim"; then down_ms=$(($(now_ms) - killed_at)); fi
    say "   HAProxy marked $victim DOWN after $down_ms ms"

    # alice's tunnels on the dead node are closed; the others stay.
    local fd alive=()
    for fd in "${TUNNELS[@]}"; do
        if [ "$fd" != - ] && tunnel_open "$fd"; then alive+=("$fd"); else close_fd "$fd"; fi
    done
    local lost=$((ALICE_MAX - ${#alive[@]}))
    say "   alice's tunnels: ${#alive[@]} still open, $lost gone with $victim"
    # The dead node's leases still count until they expire: alice, holding
    # fewer tunnels than her limit, cannot open the missing ones yet.
    local early="" early_ms=0
    if [ "$lost" -gt 0 ]; then
        early_ms=$(($(now_ms) - killed_at))
        send_connect alice "${LOAD_HOSTS[8]}" && read_answer "${TUNNELS[-1]}"
        early=$ANSWER
        say "   $early_ms ms after the kill, one more tunnel for alice: $early${ANSWER_WHY:+ ($ANSWER_WHY)}"
        if [ "$early" = 200 ]; then
            lost=$((lost - 1))
            say "   (the dead node's sessions were already released)"
        else
            say "   (the dead node's leases still count: they expire, nobody releases them)"
        fi
    fi
    # Then the leases expire: alice gets all of her limit back.
    local back_ms="never" deadline=$(($(now_ms) + (LEASE_BOUND + 10) * 1000)) host=9
    while [ "$lost" -gt 0 ] && [ "$(now_ms)" -lt "$deadline" ]; do
        send_connect alice "${LOAD_HOSTS[host++ % ${#LOAD_HOSTS[@]}]}" && read_answer "${TUNNELS[-1]}"
        if [ "$ANSWER" = 200 ]; then lost=$((lost - 1)); else sleep 0.5; fi
    done
    [ "$lost" = 0 ] && back_ms=$(($(now_ms) - killed_at))
    say "   alice holds $ALICE_MAX tunnels again $back_ms ms after the kill: $(sessions_by_node "$ALICE_MAX")"
    send_connect alice "${LOAD_HOSTS[15]}" && read_answer "${TUNNELS[-1]}"
    local over=$ANSWER
    say "   and one more is refused: $over"
    close_tunnels

    sleep 1
    stop_load
    local before during after total
    before=$(count_load 0 "$killed_at")
    during=$(count_load "$killed_at" $((killed_at + ${down_ms/never/10000})))
    after=$(count_load $((killed_at + ${down_ms/never/10000})) 99999999999999)
    total=$(count_load 0 99999999999999)
    say "   load (ok errors): before the kill $before; until DOWN $during; after $after; total $total"
    local after_ok after_bad total_bad
    read -r after_ok after_bad <<<"$after"
    total_bad=${total#* }
    if [ "$down_ms" != never ] && [ "$after_ok" -gt 0 ] && [ "$after_bad" = 0 ] &&
        [ "$total_bad" -le "$LOAD_LOOPS" ]; then
        result PASS "the balancer moved the load: $total_bad errors (at most one per load loop), none after DOWN"
    else
        result FAIL "load errors $total_bad (want <= $LOAD_LOOPS, none after DOWN), DOWN after $down_ms ms"
    fi
    # Counted until they expire: a refusal is required of the early attempt
    # when it came well inside the bound (not when the machine was slow).
    local counted=yes
    if [ "$early" = 200 ] && [ "$early_ms" -lt $(((LEASE_BOUND - 2) * 1000)) ]; then counted=no; fi
    if [ "$back_ms" != never ] && [ "$back_ms" -le $((LEASE_BOUND * 1000 + 3000)) ] && [ "$over" = 429 ] &&
        [ "$counted" = yes ]; then
        result PASS "the dead node's leases counted, then expired: alice back to $ALICE_MAX within $back_ms ms (bound ${LEASE_BOUND} s)"
    else
        result FAIL "dead node's leases counted: $counted; alice back to $ALICE_MAX after $back_ms ms" \
            "(bound ${LEASE_BOUND} s); one more got $over (want 429)"
    fi
}

# --- Main ------------------------------------------------------------------------

say "proxyd cluster demo ($SIZE): $NODES nodes behind HAProxy, Redis, parents east and west; in $TMP"
start_redis || fatal "redis-server did not start"
say "redis-server on 127.0.0.1:$REDIS_PORT"
for parent in east west; do start_parent "$parent" || fatal "parent $parent did not start"; done
say "parents: east on ${PORT[east]}, west on ${PORT[west]}"
NODE_NAMES=()
for ((n = 1; n <= NODES; n++)); do
    NODE_NAMES+=("node$n")
    start_node "node$n" || fatal "node$n did not start"
done
for name in "${NODE_NAMES[@]}"; do say "$name on 127.0.0.1:${PORT[$name]} (proxy_protocol = yes)"; done
start_haproxy || fatal "haproxy did not start or its nodes did not come UP"
say "HAProxy: clients on 127.0.0.1:$FRONTEND_PORT (roundrobin, send-proxy-v2), stats on $STATS_PORT," \
    "origin on port $ORIGIN_PORT; every node UP"

demo_user_limit
demo_budget
demo_sticky
demo_kill

echo
if [ "$FAILURES" = 0 ]; then
    say "cluster demo: every demonstration passed"
else
    say "cluster demo: $FAILURES of the demonstrations failed"
    exit 1
fi
