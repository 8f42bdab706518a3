#!/usr/bin/env python3
"""Plots a dgqa run directory from its metrics.jsonl (docs/checkpoints.md).

Python standard library only; the PNGs need gnuplot (Debian gnuplot-nox:
launch/install_deps.sh --with-bench).

  python3 tools/plot_run.py runs/default                  # into runs/default/plots
  python3 tools/plot_run.py runs/kdgqa --out /tmp/kdgqa_plots --size 1200,800

It writes into --out (default RUN_DIR/plots), each PNG next to the data files it plots:

  curves.png                 training loss (each train record) and evaluation loss against the
                             step; training top-1 and evaluation top-1/top-5 against the step
                             (curves_train.dat: step loss top1; curves_eval.dat: step loss top1
                             top5)
  allocation_layer<L>.png    per layer, a heat map of the allocation over the steps: x the step,
                             y the K/V head, the colour the query heads it serves (the equal
                             share H/G pale, more red, fewer blue). An allocation
                             record holds from its step until the step before the next one; the
                             last until the last train step (allocation_layer<L>.dat: first_step
                             last_step kv_head query_heads, one row per K/V head and interval)
  key_norms_layer<L>.png     per layer, the key norms that decided the allocation (one line per
                             K/V head, from the key_norms records), with DGQA's caches
                             (dgqa_cache records) dashed in the same colour (key_norms_layer<L>.dat
                             and dgqa_cache_layer<L>.dat: step, then one column per K/V head)

One file per layer, whatever the depth. A figure without data (no key_norms records: MHA, GQA,
PGQA) is skipped with a one-line note. Values that are not finite (null in metrics.jsonl) are
written as NaN and left out of the lines (a panel with no finite value at all says so). Exit
codes: 0 done, 2 a bad argument, a missing run directory or metrics.jsonl, a line that is not a
JSON object or a record without its fields (the message names the file and the line), or no
gnuplot; 1 gnuplot failed.
"""

import argparse
import json
import math
import os
import shutil
import subprocess
import sys

# The fields each record kind must have for the figures (other kinds are ignored).
FIELDS = {"train": ("step", "loss", "top1"), "eval": ("step", "loss", "top1", "top5"),
          "allocation": ("step", "layers"), "key_norms": ("step", "layers"),
          "dgqa_cache": ("step", "layers")}


class InputError(Exception):
    """A run directory or metrics.jsonl that cannot be plotted (exit code 2)."""


# --- Reading metrics.jsonl. ---


def read_metrics(run_dir):
    """The records of RUN_DIR/metrics.jsonl by kind: {kind: [record, ...]}, each sorted by step."""
    if not os.path.isdir(run_dir):
        raise InputError(f"{run_dir}: no such run directory")
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file (a run directory of dgqa train --out has one)")
    by_kind = {kind: [] for kind in FIELDS}
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as e:
                raise InputError(f"{path}:{number}: not JSON ({e})") from None
            if not isinstance(record, dict):
                raise InputError(f"{path}:{number}: not a JSON object")
            kind = record.get("kind")
            if kind not in FIELDS:
                continue
            for field in FIELDS[kind]:
                if field not in record:
                    raise InputError(f"{path}:{number}: {kind} record without '{field}'")
            if not isinstance(record["step"], int) or isinstance(record["step"], bool):
                raise InputError(f"{path}:{number}: 'step' is not an integer")
            if "layers" in FIELDS[kind] and not (
                    isinstance(record["layers"], list)
                    and all(isinstance(layer, list) for layer in record["layers"])):
                raise InputError(f"{path}:{number}: 'layers' is not a list of lists")
            by_kind[kind].append(record)
    for records in by_kind.values():
        records.sort(key=lambda r: r["step"])  # stable: a file's order within a step stays
    return by_kind


# --- The series the figures plot. ---


def last_step(by_kind):
    """The last train step (the last step of any record when there is no train record)."""
    steps = [r["step"] for r in by_kind["train"]]
    if not steps:
        steps = [r["step"] for records in by_kind.values() for r in records]
    return max(steps, default=0)


def allocation_intervals(by_kind, layer):
    """[(first_step, last_step, [query heads of each K/V head])] of one layer: each allocation
    record holds until the step before the next one, the last until the last train step."""
    records = [r for r in by_kind["allocation"] if layer < len(r["layers"])]
    end = last_step(by_kind)
    intervals = []
    for i, record in enumerate(records):
        first = record["step"]
        last = records[i + 1]["step"] - 1 if i + 1 < len(records) else max(end, first)
        if last >= first:  # two records of one step: the later one holds
            intervals.append((first, last, record["layers"][layer]))
    return intervals


def per_head_series(by_kind, kind, layer):
    """[(step, [value of each K/V head])] of one layer from the records of `kind`."""
    return [(r["step"], r["layers"][layer]) for r in by_kind[kind] if layer < len(r["layers"])]


def depth(by_kind, kind):
    return max((len(r["layers"]) for r in by_kind[kind]), default=0)


def number(value):
    """A value as a data file holds it: ints as they are, floats in their shortest round-trip
    form, anything not finite (null) as NaN, which gnuplot leaves out."""
    if isinstance(value, bool) or value is None:
        return "NaN"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return "NaN"


def write_data(path, header, rows):
    with open(path, "w") as f:
        f.write(f"# {header}\n")
        for row in rows:
            f.write(" ".join(number(v) for v in row) + "\n")


# --- The figures (gnuplot runs in the output directory, on the file names written there). ---


def quoted(text):
    """A gnuplot single-quoted string (no escapes inside; a quote is doubled)."""
    return "'" + text.replace("'", "''") + "'"


def gnuplot(out_dir, script):
    run = subprocess.run(["gnuplot"], input=script, text=True, cwd=out_dir, capture_output=True)
    if run.returncode != 0:
        raise RuntimeError(f"gnuplot failed ({run.returncode}):\n{run.stderr}")


def terminal(size, png):
    return (f"set terminal pngcairo noenhanced size {size[0]},{size[1]} font ',10'\n"
            f"set output {quoted(png)}\nset grid\nset xlabel 'step'\n")


def finite(values):
    return any(number(v) != "NaN" for v in values)


def plot_command(clauses):
    """A plot of the clauses whose series have a finite value (gnuplot refuses a series without
    one), or a panel that says there is none."""
    clauses = [clause for clause, values in clauses if finite(values)]
    if clauses:
        return "plot " + ", ".join(clauses) + "\n"
    return ("set label 1 'no finite values' at graph 0.5,0.75 center\n"
            "plot 0 lc rgb 'white' notitle\nunset label 1\n")


def plot_curves(out_dir, by_kind, size, name):
    train, evals = by_kind["train"], by_kind["eval"]
    write_data(os.path.join(out_dir, "curves_train.dat"), "step loss top1",
               [(r["step"], r["loss"], r["top1"]) for r in train])
    write_data(os.path.join(out_dir, "curves_eval.dat"), "step loss top1 top5",
               [(r["step"], r["loss"], r["top1"], r["top5"]) for r in evals])
    train_style = "with linespoints pt 7 ps 0.3 lw 2 lc 1"
    loss = [("'curves_train.dat' using 1:2 " + train_style + " title 'training'",
             [r["loss"] for r in train]),
            ("'curves_eval.dat' using 1:2 with linespoints pt 7 lc 2 title 'evaluation'",
             [r["loss"] for r in evals])]
    accuracy = [("'curves_train.dat' using 1:3 " + train_style + " title 'training top-1'",
                 [r["top1"] for r in train]),
                ("'curves_eval.dat' using 1:3 with linespoints pt 7 lc 2 "
                 "title 'evaluation top-1'", [r["top1"] for r in evals]),
                ("'curves_eval.dat' using 1:4 with linespoints pt 6 dt 2 lc 3 "
                 "title 'evaluation top-5'", [r["top5"] for r in evals])]
    gnuplot(out_dir, terminal(size, "curves.png") + f"""
set multiplot layout 2,1 title {quoted(name)}
set ylabel 'loss'
set key top right
{plot_command(loss)}
set ylabel 'top-1 / top-5'
set yrange [0:1.05]
set key bottom right
{plot_command(accuracy)}
unset multiplot
""")
    return ["curves.png", "curves_train.dat", "curves_eval.dat"]


def plot_allocation(out_dir, by_kind, layer, size, name):
    intervals = allocation_intervals(by_kind, layer)
    data = f"allocation_layer{layer}.dat"
    write_data(os.path.join(out_dir, data), "first_step last_step kv_head query_heads",
               [(first, last, g, heads) for first, last, alloc in intervals
                for g, heads in enumerate(alloc)])
    groups = max(len(alloc) for _, _, alloc in intervals)
    heads = max(sum(alloc) for _, _, alloc in intervals)
    png = f"allocation_layer{layer}.png"
    gnuplot(out_dir, terminal(size, png) + f"""
set title {quoted(f"{name}: allocation, layer {layer}")}
set ylabel 'K/V head'
set ytics 1
set yrange [-0.5:{groups - 0.5}]
set xrange [{intervals[0][0] - 0.5}:{intervals[-1][1] + 0.5}]
set cblabel 'query heads'
set cbrange [-0.5:{heads + 0.5}]
set cbtics 1
set palette maxcolors {heads + 1}
set palette defined (-0.5 '#2166ac', {heads / groups} 'white', {heads + 0.5} '#b2182b')
unset grid
plot '{data}' using (($1+$2)/2):3:($1-0.5):($2+0.5):($3-0.5):($3+0.5):4 \\
     with boxxyerror fs solid 1.0 noborder fc palette notitle
""")
    return [png, data]


def plot_key_norms(out_dir, by_kind, layer, size, name):
    norms = per_head_series(by_kind, "key_norms", layer)
    caches = per_head_series(by_kind, "dgqa_cache", layer)
    groups = max(len(values) for _, values in norms + caches)
    header = "step " + " ".join(f"kv{g}" for g in range(groups))
    data = f"key_norms_layer{layer}.dat"
    write_data(os.path.join(out_dir, data), header, [(s, *v) for s, v in norms])
    written = [data]
    series = [(f"'{data}' using 1:{g + 2} with linespoints pt 7 ps 0.6 lw 2 lc {g + 1} "
               f"title 'kv {g}'", [v[g] for _, v in norms if g < len(v)])
              for g in range(groups)]
    title = f"{name}: key norms, layer {layer}"
    if caches:
        cache_data = f"dgqa_cache_layer{layer}.dat"
        write_data(os.path.join(out_dir, cache_data), header, [(s, *v) for s, v in caches])
        written.append(cache_data)
        series += [(f"'{cache_data}' using 1:{g + 2} with lines dt 2 lw 2 lc {g + 1} "
                    f"title 'kv {g} DGQA cache'", [v[g] for _, v in caches if g < len(v)])
                   for g in range(groups)]
        title += " (dashed: DGQA caches)"
    png = f"key_norms_layer{layer}.png"
    gnuplot(out_dir, terminal(size, png) + f"""
set title {quoted(title)}
set ylabel 'summed key norm'
set key outside right top
{plot_command(series)}
""")
    return [png] + written


def plot_run(run_dir, out_dir, size):
    """Writes every figure that has data into out_dir; returns the paths written and the notes
    on the figures skipped."""
    by_kind = read_metrics(run_dir)
    name = os.path.basename(os.path.normpath(os.path.abspath(run_dir)))
    if shutil.which("gnuplot") is None:  # before any output, not after it
        raise InputError("plotting needs gnuplot: launch/install_deps.sh --with-bench "
                         "(Debian package gnuplot-nox)")
    os.makedirs(out_dir, exist_ok=True)
    written, notes = [], []
    if by_kind["train"] or by_kind["eval"]:
        written += plot_curves(out_dir, by_kind, size, name)
    else:
        notes.append("no train or eval records: curves.png skipped")
    layers = depth(by_kind, "allocation")
    for layer in range(layers):
        if allocation_intervals(by_kind, layer):
            written += plot_allocation(out_dir, by_kind, layer, size, name)
    if not layers:
        notes.append("no allocation records: allocation_layer<L>.png skipped")
    layers = depth(by_kind, "key_norms")
    for layer in range(layers):
        written += plot_key_norms(out_dir, by_kind, layer, size, name)
    if not layers:
        notes.append("no key_norms records (KDGQA, DGQA_DIFF and DGQA_EMA write them): "
                     "key_norms_layer<L>.png skipped")
    return [os.path.join(out_dir, f) for f in written], notes


def image_size(text):
    try:
        width, height = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants WIDTH,HEIGHT in pixels, not {text!r}")
    if not (16 <= width <= 10000 and 16 <= height <= 10000):
        raise argparse.ArgumentTypeError(f"wants 16 to 10000 pixels a side, not {text!r}")
    return width, height


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="The figures and data files: this file's docstring (pydoc3 tools/plot_run.py).")
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (dgqa train --out)")
    parser.add_argument("--out", help="where the PNGs go (default RUN_DIR/plots)")
    parser.add_argument("--size", type=image_size, default=(900, 600),
                        help="WIDTH,HEIGHT of every PNG in pixels (default 900,600)")
    args = parser.parse_args(argv)
    out_dir = args.out or os.path.join(args.run_dir, "plots")
    try:
        written, notes = plot_run(args.run_dir, out_dir, args.size)
    except InputError as e:
        print(f"plot_run: {e}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as e:
        print(f"plot_run: {e}", file=sys.stderr)
        return 1
    for note in notes:
        print(f"note: {note}")
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
