#!/usr/bin/env bash
# Side by side with Porcupine on its 102 Jepsen etcd histories.
#
#   PORCUPINE_DIR=/work/porcupine-src checker/benches/porcupine.sh
#
# PORCUPINE_DIR: a checkout of anishathalye/porcupine (a work tree: e.g.
#   `git --git-dir=<its git dir> archive HEAD | tar -x -C <dir>`); never
#   committed here. Its test_data/jepsen/etcd_NNN.log are the histories.
# RUNS (default 3): the whole comparison is repeated RUNS times, Porcupine
#   then ours (then the baseline) each run; per history the report takes the
#   median over runs, and prints each run's ratios too.
# BASELINE_TREE (optional): a worktree of an older commit of this workspace;
#   its checker is measured in the same runs (this script copies
#   checker/examples/timecheck.rs into it; BASELINE_TARGET is its target
#   dir, default /work/target-baseline). It must not be this tree's target
#   dir: Cargo names a workspace member's artifacts by its path relative to
#   the workspace, so two worktrees share them there and the "baseline"
#   silently is this tree's build.
# BASELINE_BIN (optional, instead of BASELINE_TREE): a timecheck binary
#   built earlier from the baseline commit (e.g. copied out of this target
#   dir before the change); measured in the same runs.
# OUT (default /tmp/faultline-porcupine): converted histories and rows.
# CARGO_TARGET_DIR (default /work/target-bench).
#
# Each run: Porcupine's own in-process check (CheckEvents with its etcd
# model and log parser, from its porcupine_test.go) at GOMAXPROCS=1, by
# checker/benches/porcupine_side_test.go copied into the checkout; then our
# checker in-process on one thread (checker/examples/timecheck.rs) on the
# EDN histories checker/benches/porcupine_side.py converted. Each side times
# each history by repeated checks (median; parsing not timed). The report
# (porcupine_side.py report) prints per-history times, the median ratio, the
# suite totals and their ratio, and checks that every verdict is the one
# Porcupine's test expects (exit 1 if not).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
: "${PORCUPINE_DIR:?set PORCUPINE_DIR to a Porcupine checkout}"
PORCUPINE_DIR=$(cd "$PORCUPINE_DIR" && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/target-bench}"
RUNS="${RUNS:-3}"
OUT="${OUT:-/tmp/faultline-porcupine}"
BASELINE_TARGET="${BASELINE_TARGET:-/work/target-baseline}"
side="$root/checker/benches/porcupine_side.py"
[ -f "$PORCUPINE_DIR/porcupine_test.go" ] || {
    echo "porcupine.sh: $PORCUPINE_DIR/porcupine_test.go not found" >&2
    exit 4
}

echo "== machine"
echo "nproc: $(nproc)"
lscpu | grep 'Model name' | sed 's/  */ /g'
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
go version
echo "porcupine: $(git -C "$PORCUPINE_DIR" rev-parse --short HEAD 2>/dev/null || cat "$PORCUPINE_DIR/.commit" 2>/dev/null || echo 'commit unknown')"
echo "ours: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- checker || echo ' (modified)')"

rm -rf "$OUT" && mkdir -p "$OUT/edn"
python3 "$side" convert "$PORCUPINE_DIR" "$OUT/edn"

cargo build --release -q -p checker --example timecheck
# Copied out, so a baseline built in the same target dir cannot replace it.
ours_bin="$OUT/timecheck-ours"
cp "$CARGO_TARGET_DIR/release/examples/timecheck" "$ours_bin"
if [ -n "${BASELINE_TREE:-}" ]; then
    cp "$root/checker/examples/timecheck.rs" "$BASELINE_TREE/checker/examples/timecheck.rs"
    (cd "$BASELINE_TREE" && CARGO_TARGET_DIR="$BASELINE_TARGET" \
        cargo build --release -q -p checker --example timecheck)
    echo "baseline: $(git -C "$BASELINE_TREE" rev-parse --short HEAD)"
    baseline_bin="$OUT/timecheck-baseline"
    cp "$BASELINE_TARGET/release/examples/timecheck" "$baseline_bin"
elif [ -n "${BASELINE_BIN:-}" ]; then
    echo "baseline: $BASELINE_BIN"
    baseline_bin="$OUT/timecheck-baseline"
    cp "$BASELINE_BIN" "$baseline_bin"
fi

# Porcupine's test file for this run only; removed on any exit.
go_test="$PORCUPINE_DIR/faultline_side_test.go"
cp "$root/checker/benches/porcupine_side_test.go" "$go_test"
trap 'rm -f "$go_test"' EXIT
(cd "$PORCUPINE_DIR" && GOTOOLCHAIN=local go test -c -o "$OUT/porcupine.test" . >/dev/null)

files=("$OUT"/edn/etcd_*.edn)
for run in $(seq "$RUNS"); do
    echo "== run $run of $RUNS (load: $(cut -d' ' -f1 /proc/loadavg))"
    (cd "$PORCUPINE_DIR" && GOMAXPROCS=1 FAULTLINE_SIDE_OUT="$OUT/porcupine.tsv" \
        FAULTLINE_SIDE_RUN="$run" "$OUT/porcupine.test" \
        -test.run '^TestFaultlineSideBySide$' -test.count=1 >/dev/null)
    "$ours_bin" "$run" "$OUT/ours.tsv" "${files[@]}"
    if [ -n "${baseline_bin:-}" ]; then
        "$baseline_bin" "$run" "$OUT/baseline.tsv" "${files[@]}"
    fi
done

echo "== report (times in µs; ratio = Porcupine's time / ours)"
python3 "$side" report "$OUT/porcupine.tsv" "$OUT/ours.tsv" \
    ${baseline_bin:+"$OUT/baseline.tsv"}
