#!/usr/bin/env bash
# Re-runs every measurement of BENCHMARKS.md "## checker".
#
#   checker/benches/measure.sh            # from anywhere in the workspace
#
# RUNS (default 5): repetitions of the in-process report (medians over them);
# CLI_RUNS (default 3): runs of `faultline check` under /usr/bin/time -v;
# OUT (default /tmp/faultline-bench): where generated histories go (never the repo);
# CARGO_TARGET_DIR (default /work/target-bench).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-bench}"
RUNS="${RUNS:-5}"
CLI_RUNS="${CLI_RUNS:-3}"
OUT="${OUT:-/tmp/faultline-bench}"
mkdir -p "$OUT"

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

echo "== machine"
echo "nproc: $(nproc)"
lscpu | grep 'Model name' | sed 's/  */ /g'
free -h | awk 'NR == 2 { print "memory: " $2 }'
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"

cargo build --release -q -p harness --bin faultline
cargo build --release -q -p checker --example genhist
bin="$CARGO_TARGET_DIR/release"

echo "== faultline check (process: parse + check), $CLI_RUNS runs each, medians"
for spec in "multikey 1" "long 1" "etcd-bad 72" "etcd 53"; do
    set -- $spec
    file="$OUT/$1-$2.jsonl"
    "$bin/examples/genhist" "$1" "$2" "$file"
    : > "$OUT/$1-$2.rows"
    for i in $(seq "$CLI_RUNS"); do
        /usr/bin/time -v "$bin/faultline" check "$file" --model cas-register --init null --json \
            > "$OUT/$1-$2.json" 2> "$OUT/$1-$2.time" || true
        check_ms=$(grep -o '"elapsed_ms":[0-9.e+-]*' "$OUT/$1-$2.json" | tail -1 | cut -d: -f2)
        wall=$(grep 'Elapsed (wall clock)' "$OUT/$1-$2.time" | awk '{ print $NF }' | awk -F: '{ print ($1 * 60 + $2) * 1000 }')
        rss=$(grep 'Maximum resident set size' "$OUT/$1-$2.time" | awk '{ print $NF }')
        verdict=$(grep -o '"valid":[a-z"]*' "$OUT/$1-$2.json" | tail -1 | cut -d: -f2)
        echo "$check_ms $wall $rss $verdict" >> "$OUT/$1-$2.rows"
    done
    printf '%s seed %s: valid=%s; check (elapsed_ms) median %s ms; wall median %s ms; max RSS median %s KiB\n' \
        "$1" "$2" "$(awk 'NR == 1 { print $4 }' "$OUT/$1-$2.rows")" \
        "$(cut -d' ' -f1 "$OUT/$1-$2.rows" | median)" \
        "$(cut -d' ' -f2 "$OUT/$1-$2.rows" | median)" \
        "$(cut -d' ' -f3 "$OUT/$1-$2.rows" | median)"
done

echo "== in-process report ($RUNS runs; summary = medians)"
FAULTLINE_BENCH_RUNS="$RUNS" FAULTLINE_BENCH_REPORT_ONLY=1 \
    cargo bench -q -p checker --bench linearizability 2>/dev/null | grep -E '^(report|summary):'
