# shellcheck shell=bash
# bench/processes.sh: process trees for the bench scripts (sourced by run.sh
# and sessions.sh): what they start is killed with everything it started.

# tree_pids ROOT: ROOT and all of its descendants.
tree_pids() {
    ps -e -o pid=,ppid= | awk -v root="$1" '
        { parent[$1] = $2; pids[NR] = $1 }
        END {
            keep[root] = 1; changed = 1
            while (changed) {
                changed = 0
                for (i in pids) { p = pids[i]; if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } }
            }
            for (p in keep) if (p != "") print p
        }'
}

# kill_trees ROOT...: SIGTERM to each root, up to 5 s for every process of
# their trees to exit, then SIGKILL to what is left. The trees are collected
# first: once a root dies its children are reparented.
kill_trees() {
    local p i alive all=""
    for p in "$@"; do [ -n "$p" ] && all="$all $(tree_pids "$p")"; done
    [ -z "${all// /}" ] && return 0
    for p in "$@"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null; done
    for ((i = 0; i < 50; i++)); do
        alive=0
        for p in $all; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && break
        sleep 0.1
    done
    for p in $all; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
}
