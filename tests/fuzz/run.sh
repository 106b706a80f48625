#!/bin/bash
# Runs one libFuzzer target for a bounded time: run.sh BINARY SECONDS
# New inputs go to build/, never into the committed seed corpus, and so do
# crash, timeout and leak files: BUILD/fuzz/artifacts/NAME/.
set -eu
bin=$1 seconds=$2
name=$(basename "$bin")
seeds=tests/fuzz/corpus/$name
work=$(dirname "$bin")/corpus-$name
artifacts=$(dirname "$bin")/artifacts/$name
mkdir -p "$work" "$artifacts"
# libFuzzer's own exit code for a crash or a leak is 77, which
# tests/run_tests.sh reads as "skipped": a finding must fail the run.
args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
      -error_exitcode=1 -artifact_prefix="$artifacts/")
[ -f "tests/fuzz/$name.dict" ] && args+=(-dict="tests/fuzz/$name.dict")
if [ -d "$seeds" ]; then
    exec "$bin" "${args[@]}" "$work" "$seeds"
fi
exec "$bin" "${args[@]}" "$work"
