#!/bin/bash
# Runs every test suite and prints the contract's summary line last:
#   N passed, M failed[, K skipped]
# A suite that dies without its own summary counts as one failure.
set -u
BUILD=${BUILD:-build}
FUZZ_SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-8}
# INTEGRATION_FILTER: a --gtest_filter for the integration suite (all if unset).
export PROXYD_BIN=${PROXYD_BIN:-$BUILD/proxyd}
export PROXYCTL_BIN=${PROXYCTL_BIN:-$BUILD/proxyctl}
cd "$(dirname "$0")/.."
log_dir=$BUILD/test-logs
mkdir -p "$log_dir"
passed=0 failed=0 skipped=0

count_gtest() {  # $1 = log file, $2 = exit status
    local p f s
    p=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' "$1" | tail -1)
    f=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*listed below.*/\1/p' "$1" | tail -1)
    s=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' "$1" | tail -1)
    if [ -z "$p" ] && [ -z "$f" ]; then
        # The tests that ended before it died still count, and it as one more failure.
        p=$(grep -c '^\[       OK \] ' "$1"); f=$(grep -cE '^\[  FAILED  \] .* \([0-9]+ ms\)$' "$1")
        echo "  suite died before its summary (exit $2): see $1"
        passed=$((passed + p)); failed=$((failed + f + 1)); return
    fi
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
    if [ "${f:-0}" = 0 ] && [ "$2" != 0 ]; then
        echo "  suite exited $2 after its summary: see $1"; tail -n 10 "$1" | sed 's/^/      /'
        failed=$((failed + 1))
    fi
}

# Names every test of a gtest log that failed, each with the first lines of
# its failure output (from gtest's first "Failure" line; the last lines it
# printed when there is none), and a test that was running when the suite
# died. Tests that failed outside any test body (SetUpTestSuite, a global
# environment) are named from gtest's closing list.
report_failures() {  # $1 = log file
    awk -v keep=10 '
        function flush_tail(   i, n) {
            n = tail_n < keep ? tail_n : keep
            for (i = tail_n - n; i < tail_n; i++) print "      " tail[i % keep]
        }
        function report(name, why) {
            print "  FAILED " name why
            if (captured > 0) { for (i = 0; i < captured; i++) print "      " block[i] }
            else flush_tail()
            reported[name] = 1
        }
        /^\[ RUN      \] / { name = substr($0, 14); running = 1; captured = 0; tail_n = 0; next }
        running && /^\[       OK \] / { running = 0; next }
        running && /^\[  SKIPPED \] / { running = 0; next }
        running && /^\[  FAILED  \] / { running = 0; report(name, ""); next }
        running {
            if (captured > 0 && captured < keep) block[captured++] = $0
            else if (captured == 0 && /(^|: )Failure$/) block[captured++] = $0
            tail[tail_n % keep] = $0; tail_n++
            next
        }
        /^\[  FAILED  \] [0-9]+ tests?, listed below/ { listing = 1; next }
        listing && /^\[  FAILED  \] / {
            listed = substr($0, 14); sub(/ \([0-9]+ ms\)$/, "", listed); sub(/, where .*$/, "", listed)
            if (!(listed in reported)) { captured = 0; tail_n = 0; report(listed, " (outside a test body: see the log)") }
            next
        }
        END { if (running) report(name, " (did not finish: the suite died)") }
    ' "$1"
}

run_gtest() {  # $1 = name, $2 = binary, $3 = optional --gtest_filter
    local out=$log_dir/$1.log
    echo "== $1${3:+ ($3)}"
    "$2" --gtest_color=no ${3:+--gtest_filter="$3"} >"$out" 2>&1
    local rc=$?
    report_failures "$out"
    grep -E '^\[  SKIPPED \] [A-Za-z]' "$out" | sort -u | sed 's/^/  /'
    grep -E '^\[==========\] [0-9]+ tests? from .* ran' "$out" | sed 's/^/  /'
    count_gtest "$out" $rc
}

run_check() {  # $1 = name, then the command; one test each; exit 77 = skipped
    local name=$1 out=$log_dir/$1.log rc; shift
    "$@" >"$out" 2>&1
    rc=$?
    if [ "$rc" = 0 ]; then
        echo "== $name: ok"; passed=$((passed + 1))
    elif [ "$rc" = 77 ]; then
        echo "== $name: skipped ($(tail -1 "$out"))"; skipped=$((skipped + 1))
    else
        echo "== $name: FAILED (see $out)"; sed 's/^/  /' "$out" | head -20
        # A long report (the cluster demo's) ends with its verdicts.
        if [ "$(wc -l <"$out")" -gt 20 ]; then echo "  ..."; grep -E 'FAIL|failed' "$out" | tail -10 | sed 's/^/  /'; fi
        failed=$((failed + 1))
    fi
}

run_gtest unit "$BUILD/unit_tests"
run_gtest integration "$BUILD/integration_tests" "${INTEGRATION_FILTER:-}"
run_check mandoc-lint sh -c 'out=$(mandoc -Tlint man/*.[0-9] 2>&1); [ -z "$out" ] || { echo "$out"; exit 1; }'
run_check config-test "$PROXYD_BIN" -t -c conf/proxyd.conf
# The cluster demo at its small size: redis-server, two proxyd nodes behind
# haproxy (about 30 s). Not in a filtered run (make asan-ci): its budget and
# expiry windows are timed, and ASan stretches them.
if [ -z "${INTEGRATION_FILTER:-}" ]; then
    run_check cluster-demo env SIZE=small BUILD="$BUILD" PROXYD="$PROXYD_BIN" PROXYCTL="$PROXYCTL_BIN" \
        tests/cluster/demo.sh
fi
# make install into a temp DESTDIR: the installed layout (a few seconds).
run_check package-install env BUILD="$BUILD" tests/package/check_install.sh
if [ "$FUZZ_SMOKE_SECONDS" != 0 ]; then
    for f in "$BUILD"/fuzz/*; do
        [ -f "$f" ] && [ -x "$f" ] || continue
        run_check "fuzz-$(basename "$f")" tests/fuzz/run.sh "$f" "$FUZZ_SMOKE_SECONDS"
    done
fi

if [ "$skipped" != 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
