#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Draws ferry-bench's bandwidth against block size (log2 axis), one line per
batch size, with anchors (e.g. ucx_perftest) beside it.

ferry-bench runs this itself for --plot FILE.png; by hand:

    python3 tools/ferry-bench-plot.py --rows rows.jsonl --out sweep.png \
        [--anchor_csv anchors.csv] [--title TEXT]

rows.jsonl: ferry-bench --json output (one JSON object a line).
anchors.csv: label,block_size,gbps rows (a header line is optional; block
sizes may be written 4096 or 4K/1M/1G).
--check only tests that matplotlib can be imported.
Exit codes: 0 done, 1 bad input, 4 matplotlib missing.
"""
import argparse
import csv
import json
import sys

UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def need_pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError as e:
        sys.stderr.write(
            "ferry-bench-plot: matplotlib is missing (%s); install it with "
            "'apt-get install python3-matplotlib' or 'pip install matplotlib'\n" % e
        )
        sys.exit(4)
    return plt


def parse_size(text):
    s = text.strip().upper().removesuffix("IB").removesuffix("B")
    if s and s[-1] in UNITS:
        return int(s[:-1]) * UNITS[s[-1]]
    return int(s)


def read_rows(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as e:
                    sys.exit("ferry-bench-plot: %s line %d: %s" % (path, n, e))
    return rows


def read_anchors(path):
    series = {}
    with open(path, newline="") as f:
        for n, rec in enumerate(csv.reader(f), 1):
            if not rec or rec[0].startswith("#") or (n == 1 and rec[0].strip() == "label"):
                continue
            if len(rec) != 3:
                sys.exit("ferry-bench-plot: %s line %d: want label,block_size,gbps" % (path, n))
            try:
                point = (parse_size(rec[1]), float(rec[2]))
            except ValueError:
                sys.exit("ferry-bench-plot: %s line %d: bad number" % (path, n))
            series.setdefault(rec[0].strip(), []).append(point)
    return series


def sweep_series(rows):
    series = {}
    for r in rows:
        label = "ferry %s %s, batch %d" % (r.get("backend", ""), r.get("op_type", ""), r["batch_size"])
        series.setdefault(label, []).append((r["block_size"], r["bandwidth_gbps"]))
    return series


def size_label(b):
    for unit in ("T", "G", "M", "K"):
        if b >= UNITS[unit] and b % UNITS[unit] == 0:
            return "%d%s" % (b // UNITS[unit], unit)
    return str(b)


def draw(plt, sweep, anchors, title, out):
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for label, pts in sweep.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=label)
    for label, pts in anchors.items():
        pts.sort()
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="s", linestyle="--", label=label)
    ticks = sorted({p[0] for s in list(sweep.values()) + list(anchors.values()) for p in s})
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks)
    ax.set_xticklabels([size_label(t) for t in ticks], rotation=45)
    ax.set_xlabel("block size (bytes)")
    ax.set_ylabel("bandwidth (GB/s, 1e9 bytes)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="only check that matplotlib imports")
    ap.add_argument("--rows", help="ferry-bench --json file")
    ap.add_argument("--anchor_csv", help="label,block_size,gbps rows")
    ap.add_argument("--out", help="PNG file to write")
    ap.add_argument("--title", default="ferry-bench")
    args = ap.parse_args()
    plt = need_pyplot()
    if args.check:
        return 0
    if not args.rows or not args.out:
        ap.error("--rows and --out are needed")
    sweep = sweep_series(read_rows(args.rows))
    anchors = read_anchors(args.anchor_csv) if args.anchor_csv else {}
    if not sweep and not anchors:
        sys.exit("ferry-bench-plot: nothing to draw")
    draw(plt, sweep, anchors, args.title, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
