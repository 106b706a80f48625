#!/bin/bash
# Runs every fuzz target for a long time, one after the other, and records
# what each did in README.md: long.sh SECONDS BINARY...
#
# The execs come from libFuzzer's -print_final_stats (run.sh asks for them).
# The table replaces the lines between the two fuzz-long markers of
# README.md, so the README always shows the last long run. A target that
# finds a crash is recorded as such, its input is in build/fuzz/artifacts/,
# the other targets still run, and the script fails at the end.
set -eu
seconds=$1
shift
readme=README.md
begin='<!-- fuzz-long: begin (written by tests/fuzz/long.sh) -->'
end='<!-- fuzz-long: end -->'
grep -qxF "$begin" "$readme" && grep -qxF "$end" "$readme" || {
    echo "long.sh: $readme has no fuzz-long markers" >&2
    exit 1
}

final_stat() {  # $1 = stat name, $2 = log
    sed -n "s/^stat::$1: *//p" "$2" | tail -1
}

rows="" failed=0
for bin in "$@"; do
    name=$(basename "$bin")
    log=$(dirname "$bin")/long-$name.log
    echo "== fuzz-long $name: ${seconds} s (log: $log)"
    result=clean
    if ! tests/fuzz/run.sh "$bin" "$seconds" >"$log" 2>&1; then
        result="**failed**: see \`build/fuzz/artifacts/$name/\`"
        failed=1
    fi
    execs=$(final_stat number_of_executed_units "$log")
    rate=$(final_stat average_exec_per_sec "$log")
    rows+="| \`$name\` | $seconds | ${execs:-?} | ${rate:-?} | $result |"$'\n'
    echo "   $result, ${execs:-?} execs, ${rate:-?} execs/s"
done

table=$(mktemp)
trap 'rm -f "$table"' EXIT
{
    echo "$begin"
    echo "Last \`make fuzz-long\`: $seconds s per target, one target at a time, on"
    echo "$(date -u +%Y-%m-%d) on a $(nproc)-core machine (load average $(cut -d' ' -f1 /proc/loadavg)"
    echo "at the end, from the other work on it):"
    echo
    echo "| target | seconds | execs | execs/s | result |"
    echo "|---|---|---|---|---|"
    printf '%s' "$rows"
    echo "$end"
} >"$table"
awk -v begin="$begin" -v end="$end" -v table="$table" '
    $0 == begin { while ((getline line < table) > 0) print line; skip = 1; next }
    $0 == end { skip = 0; next }
    !skip { print }
' "$readme" >"$readme.new"
mv "$readme.new" "$readme"
exit "$failed"
