#!/usr/bin/env python3
"""Porcupine's Jepsen etcd logs as EDN histories, and the side-by-side report.

Two commands, Python 3 standard library only (driven by
`checker/benches/porcupine.sh`; see there for the whole benchmark):

    porcupine_side.py convert <porcupine-checkout> <out-dir>
    porcupine_side.py report <porcupine.tsv> <ours.tsv> [<baseline.tsv>]

`convert` reads `test_data/jepsen/etcd_NNN.log` (Jepsen's console log of
the etcd register test: `INFO  jepsen.util - <process> <type> <f> <value>`)
and writes `<out-dir>/etcd_NNN.edn`, one Jepsen op map per line, for
`faultline check --model cas-register` (initial value nil, a nil read
meaning "holds nothing", as in Porcupine's etcd model). Empty logs (Porcupine
has one, etcd_095, with no test of its own) are left out. The mapping:

- `:invoke :read nil`, `:invoke :write v`, `:invoke :cas [a b]` become
  invocations with those values;
- `:ok` completions keep their value (a read's is the value read);
- `:fail :cas [a b]` is a failed cas: it did not happen;
- `:fail :read :timed-out` is a failed read (a read changes nothing, so a
  timed-out one may as well not have happened: Porcupine gives it an
  "unknown" output that every state accepts);
- `:info :write :timed-out` and `:info :cas :timed-out` are indeterminate
  completions, carrying the invocation's value (Porcupine leaves these calls
  open until the end of the history, which means the same: the op may take
  effect at any point after its call, or never).

`report` joins the per-history rows of both checkers (and of a baseline
build of ours, when given) and prints each history's times, the median of
the per-history ratios, the suite totals and their ratio, and whether the
verdicts agree with Porcupine's on every history. A row is
`run<TAB>history<TAB>verdict<TAB>median_ns<TAB>samples`; with several runs
a history's time is the median over runs, and each run's ratios are shown.
It exits 1 when a verdict differs.
"""

import os
import re
import statistics
import sys

LINE = re.compile(
    r"^INFO\s+jepsen\.util\s+-\s+(\d+)\s+:(invoke|ok|fail|info)\s+:(read|write|cas)\s+(.*?)\s*$"
)
CAS_VALUE = re.compile(r"^\[(\d+)\s+(\d+)\]$")


def edn_value(text):
    """A log value as EDN: nil, an integer, `[a b]`, or a keyword."""
    if text == "nil" or re.fullmatch(r"\d+", text) or text.startswith(":"):
        return text
    cas = CAS_VALUE.match(text)
    if cas:
        return "[%s %s]" % cas.groups()
    raise ValueError("unexpected value %r" % text)


def convert_log(lines, source):
    """The EDN op lines of one log; raises ValueError naming the bad line."""
    out = []
    invoked = {}  # process -> the value of its outstanding invocation
    for number, line in enumerate(lines, 1):
        match = LINE.match(line)
        if not match:
            raise ValueError("%s:%d: not an op line: %r" % (source, number, line))
        process, kind, f, value = match.groups()
        try:
            value = edn_value(value)
        except ValueError as e:
            raise ValueError("%s:%d: %s" % (source, number, e)) from None
        if kind == "invoke":
            invoked[process] = value
        elif process not in invoked:
            raise ValueError("%s:%d: completion without an invocation" % (source, number))
        elif kind in ("info", "fail"):
            # An indeterminate or failed op is the op that was invoked.
            value = invoked.pop(process)
        else:
            invoked.pop(process)
        out.append(
            "{:process %s, :type :%s, :f :%s, :value %s}" % (process, kind, f, value)
        )
    return out


def convert(checkout, out_dir):
    logs = os.path.join(checkout, "test_data", "jepsen")
    names = sorted(n for n in os.listdir(logs) if re.fullmatch(r"etcd_\d{3}\.log", n))
    if not names:
        sys.exit("convert: no etcd_NNN.log in %s" % logs)
    os.makedirs(out_dir, exist_ok=True)
    written = 0
    for name in names:
        path = os.path.join(logs, name)
        with open(path) as f:
            lines = [l for l in f.read().splitlines() if l.strip()]
        if not lines:
            continue
        try:
            ops = convert_log(lines, path)
        except ValueError as e:
            sys.exit("convert: %s" % e)
        with open(os.path.join(out_dir, name[:-4] + ".edn"), "w") as f:
            f.write("\n".join(ops) + "\n")
        written += 1
    print("converted %d histories into %s" % (written, out_dir))


def read_rows(path):
    """{history: [(verdict, ns), ...] over runs}."""
    rows = {}
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 5:
                sys.exit("report: %s:%d: expected 5 columns, got %r" % (path, number, line))
            _run, history, verdict, ns, _samples = cols
            rows.setdefault(history, []).append((verdict, float(ns)))
    return rows


def runs_of(rows):
    return max(len(v) for v in rows.values())


def fmt_us(ns):
    return "%.1f" % (ns / 1e3) if ns < 1e7 else "%.0f" % (ns / 1e3)


def report(paths):
    sides = [read_rows(p) for p in paths]
    names = ["porcupine", "ours"] + (["baseline"] if len(paths) > 2 else [])
    porcupine = sides[0]
    histories = sorted(porcupine)
    for name, side in zip(names[1:], sides[1:]):
        missing = sorted(set(histories) - set(side))
        if missing:
            sys.exit("report: %s has no row for %s" % (name, ", ".join(missing)))

    def median_ns(side, h):
        return statistics.median(ns for _, ns in side[h])

    head = "%-10s %-8s %12s %12s %8s" % ("history", "verdict", "porcupine_us", "ours_us", "ratio")
    if len(sides) > 2:
        head += " %12s %8s" % ("baseline_us", "ratio")
    print(head)
    disagree = []
    for h in histories:
        expected = porcupine[h][0][0]
        verdicts = {v for side in sides for v, _ in side[h]}
        if verdicts != {expected}:
            disagree.append("%s (porcupine %s, ours %s)" % (h, expected, sorted(verdicts)))
        p, o = median_ns(porcupine, h), median_ns(sides[1], h)
        line = "%-10s %-8s %12s %12s %8.1f" % (h, expected, fmt_us(p), fmt_us(o), p / o)
        if len(sides) > 2:
            b = median_ns(sides[2], h)
            line += " %12s %8.1f" % (fmt_us(b), p / b)
        print(line)

    def summary(label, pick):
        """Median per-history ratio and suite totals, for one pick of times."""
        p = [pick(porcupine, h) for h in histories]
        out = []
        for name, side in zip(names[1:], sides[1:]):
            o = [pick(side, h) for h in histories]
            ratios = [a / b for a, b in zip(p, o)]
            out.append(
                "%s: %s median history %s us vs %s us, median ratio %.1fx; "
                "suite %.1f ms vs %.2f ms, total ratio %.1fx"
                % (
                    label,
                    name,
                    fmt_us(statistics.median(p)),
                    fmt_us(statistics.median(o)),
                    statistics.median(ratios),
                    sum(p) / 1e6,
                    sum(o) / 1e6,
                    sum(p) / sum(o),
                )
            )
        return out

    runs = min(runs_of(s) for s in sides)
    if runs > 1:
        for r in range(runs):
            for line in summary("run %d" % (r + 1), lambda s, h, r=r: s[h][r][1]):
                print(line)
    for line in summary("overall", median_ns):
        print(line)
    print(
        "verdicts: %d of %d histories agree with Porcupine (%d linearizable, %d not)"
        % (
            len(histories) - len(disagree),
            len(histories),
            sum(porcupine[h][0][0] == "valid" for h in histories),
            sum(porcupine[h][0][0] != "valid" for h in histories),
        )
    )
    if disagree:
        print("DISAGREE: " + "; ".join(disagree))
        sys.exit(1)


def main(argv):
    if len(argv) == 3 and argv[0] == "convert":
        convert(argv[1], argv[2])
    elif len(argv) in (3, 4) and argv[0] == "report":
        report(argv[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
