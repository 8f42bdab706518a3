#!/usr/bin/env python3
"""Sweeps of dgqa runs over schemes x datasets x seeds, and their results table.

Usage:
  tools/sweep.py count SWEEP_FILE            the number of grid points
  tools/sweep.py list SWEEP_FILE [--commands] a numbered list of the grid (index, state, OUT);
                                             with --commands, each run's dgqa command line
  tools/sweep.py args SWEEP_FILE INDEX       grid point INDEX's `dgqa train` arguments after
                                             `train`, each ended by a NUL byte (for the
                                             launch scripts)
  tools/sweep.py overrides SWEEP_FILE INDEX  the same without --config, --out and --resume
  tools/sweep.py out SWEEP_FILE INDEX        grid point INDEX's run directory (OUT)
  tools/sweep.py config SWEEP_FILE INDEX     grid point INDEX's config file
  tools/sweep.py finished RUN_DIR            exit 0 when the run finished, 1 when not
  tools/sweep.py results RUN_ROOT_OR_SWEEP_FILE [--csv FILE] [--markdown FILE]
                                             the table of final top-1 (markdown on stdout)

The sweep file is JSON (docs/experiments.md):
  {
    "base_config": "configs/fmnist_gqa.pbtxt",
    "out": "runs/sweep",
    "schemes": ["GQA", "KDGQA"],
    "seeds": [0, 1, 2],
    "datasets": [{"name": "fmnist", "set": ["data.mean=0.286"], "config": "...",
                  "init_from": "..."}],
    "set": ["train.max_steps=500"],
    "init_from": "mha_timm.safetensors"
  }
Grid point i runs, datasets outermost and seeds innermost:
  dgqa train --config CONFIG --set model.attention=SCHEME --set seed=SEED
             [--set ... of "set", then of the dataset] [--init-from FILE]
             --out OUT/<dataset>/<scheme>/seed<SEED> --resume auto
CONFIG is the dataset's "config" when it has one, else "base_config"; the dataset's
"init_from" replaces the global one. A bad sweep file is one line `sweep.py: error: FILE:
field ...: ...` and exit code 2.
"""
import csv
import io
import json
import os
import re
import statistics
import sys

SCHEMES = ["MHA", "GQA", "KDGQA", "DGQA_DIFF", "DGQA_EMA", "PGQA"]
TOP_FIELDS = {"base_config", "out", "schemes", "seeds", "datasets", "set", "init_from"}
DATASET_FIELDS = {"name", "set", "config", "init_from"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class SweepError(Exception):
    pass


def fail(message):
    print(f"sweep.py: error: {message}", file=sys.stderr)
    sys.exit(2)


# ---- The sweep file ----

def _string(value, where):
    if not isinstance(value, str) or not value:
        raise SweepError(f"field {where}: wants a non-empty string, not {json.dumps(value)}")
    return value


def _overrides(value, where):
    if not isinstance(value, list):
        raise SweepError(f"field {where}: wants a list of \"path=value\" strings")
    for i, item in enumerate(value):
        if not isinstance(item, str) or "=" not in item or item.startswith("="):
            raise SweepError(f"field {where}[{i}]: wants \"path=value\", not {json.dumps(item)}")
    return list(value)


def _distinct_list(value, where, what, good, why):
    """A non-empty list whose items pass `good` (else `why(item)` names the fault), each once."""
    if not isinstance(value, list) or not value:
        raise SweepError(f"field {where}: wants a non-empty list of {what}")
    for i, item in enumerate(value):
        if not good(item):
            raise SweepError(f"field {where}[{i}]: {why(item)}")
    if len(set(value)) != len(value):
        twice = next(item for item in value if value.count(item) > 1)
        raise SweepError(f"field {where}: {json.dumps(twice)} is listed twice")
    return list(value)


def load_sweep(path):
    """The sweep file as a dict with every field checked; raises SweepError naming the field."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise SweepError(f"cannot read it: {e.strerror}")
    try:
        sweep = json.loads(text)
    except json.JSONDecodeError as e:
        raise SweepError(f"not JSON: {e.msg} at line {e.lineno} column {e.colno}")
    if not isinstance(sweep, dict):
        raise SweepError("wants a JSON object at the top")
    for key in sweep:
        if key not in TOP_FIELDS:
            raise SweepError(f"field {key}: unknown (the fields: {', '.join(sorted(TOP_FIELDS))})")
    for key in ("base_config", "out", "schemes", "seeds", "datasets"):
        if key not in sweep:
            raise SweepError(f"field {key}: missing")
    result = {"base_config": _string(sweep["base_config"], "base_config"),
              "out": _string(sweep["out"], "out"),
              "set": _overrides(sweep.get("set", []), "set"),
              "init_from": None}
    if "init_from" in sweep:
        result["init_from"] = _string(sweep["init_from"], "init_from")

    result["schemes"] = _distinct_list(
        sweep["schemes"], "schemes", "scheme names", lambda scheme: scheme in SCHEMES,
        lambda scheme: f"{json.dumps(scheme)} is not one of {', '.join(SCHEMES)}")
    result["seeds"] = _distinct_list(
        sweep["seeds"], "seeds", "integers",
        lambda seed: isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**64,
        lambda seed: f"wants an integer in [0, 2^64), not {json.dumps(seed)}")

    datasets = sweep["datasets"]
    if not isinstance(datasets, list) or not datasets:
        raise SweepError("field datasets: wants a non-empty list of {\"name\": ..., ...} objects")
    result["datasets"] = []
    names = set()
    for i, dataset in enumerate(datasets):
        where = f"datasets[{i}]"
        if not isinstance(dataset, dict):
            raise SweepError(f"field {where}: wants an object with a \"name\"")
        for key in dataset:
            if key not in DATASET_FIELDS:
                raise SweepError(f"field {where}.{key}: unknown (the fields: "
                                 f"{', '.join(sorted(DATASET_FIELDS))})")
        if "name" not in dataset:
            raise SweepError(f"field {where}.name: missing")
        name = _string(dataset["name"], f"{where}.name")
        if not NAME.match(name):
            raise SweepError(f"field {where}.name: {json.dumps(name)} is not a directory name "
                             "(letters, digits, '.', '_', '-')")
        if name in names:
            raise SweepError(f"field {where}.name: {json.dumps(name)} is listed twice")
        names.add(name)
        entry = {"name": name, "set": _overrides(dataset.get("set", []), f"{where}.set"),
                 "config": None, "init_from": None}
        for key in ("config", "init_from"):
            if key in dataset:
                entry[key] = _string(dataset[key], f"{where}.{key}")
        result["datasets"].append(entry)
    return result


def load_or_fail(path):
    try:
        return load_sweep(path)
    except SweepError as e:
        fail(f"{path}: {e}")


def grid(sweep):
    """The grid points in order: dicts of dataset, scheme, seed, out, args (after `train`)."""
    points = []
    for dataset in sweep["datasets"]:
        for scheme in sweep["schemes"]:
            for seed in sweep["seeds"]:
                out = os.path.join(sweep["out"], dataset["name"], scheme, f"seed{seed}")
                config = dataset["config"] or sweep["base_config"]
                overrides = ["--set", f"model.attention={scheme}", "--set", f"seed={seed}"]
                for override in sweep["set"] + dataset["set"]:
                    overrides += ["--set", override]
                init_from = dataset["init_from"] or sweep["init_from"]
                if init_from:
                    overrides += ["--init-from", init_from]
                args = ["--config", config] + overrides + ["--out", out, "--resume", "auto"]
                points.append({"dataset": dataset["name"], "scheme": scheme, "seed": seed,
                               "config": config, "overrides": overrides, "out": out,
                               "args": args})
    return points


def point(sweep_path, index_text):
    points = grid(load_or_fail(sweep_path))
    if not re.fullmatch(r"[0-9]+", index_text) or int(index_text) >= len(points):
        fail(f"{sweep_path}: no grid point {index_text!r}: the grid has {len(points)} "
             f"(0 to {len(points) - 1})")
    return points[int(index_text)]


# ---- Runs ----

def read_records(run_dir):
    """The JSON objects of RUN_DIR/metrics.jsonl (lines that are not objects skipped)."""
    records = []
    try:
        path = os.path.join(run_dir, "metrics.jsonl")
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except OSError:
        return None
    return records


def run_state(run_dir):
    """(state, final top-1 or None): state is finished, unfinished or missing. A run finished
    when model.safetensors exists and its last eval record is at its last step (training
    always ends with an evaluation)."""
    records = read_records(run_dir)
    if records is None:
        return "missing", None
    evals = [r for r in records if r.get("kind") == "eval"]
    steps = [r["step"] for r in records if isinstance(r.get("step"), int)]
    if not evals or not os.path.isfile(os.path.join(run_dir, "model.safetensors")):
        return "unfinished", None
    last = evals[-1]
    if (not isinstance(last.get("step"), int) or last["step"] != max(steps) or
            not isinstance(last.get("top1"), (int, float)) or isinstance(last["top1"], bool)):
        return "unfinished", None
    return "finished", float(last["top1"])


# ---- The table ----

def collect_from_sweep(sweep):
    runs = [(p["dataset"], p["scheme"], p["seed"], p["out"]) for p in grid(sweep)]
    return runs, [d["name"] for d in sweep["datasets"]], list(sweep["schemes"])


def collect_from_root(root):
    """Runs under ROOT/<dataset>/<scheme>/seed<S> (every directory of that shape)."""
    runs = []
    for dataset in sorted(os.listdir(root)):
        dataset_dir = os.path.join(root, dataset)
        if not os.path.isdir(dataset_dir):
            continue
        for scheme in sorted(os.listdir(dataset_dir)):
            scheme_dir = os.path.join(dataset_dir, scheme)
            if scheme not in SCHEMES or not os.path.isdir(scheme_dir):
                continue
            for seed_dir in sorted(os.listdir(scheme_dir)):
                match = re.fullmatch(r"seed([0-9]+)", seed_dir)
                if match and os.path.isdir(os.path.join(scheme_dir, seed_dir)):
                    runs.append((dataset, scheme, int(match.group(1)),
                                 os.path.join(scheme_dir, seed_dir)))
    runs.sort(key=lambda r: (r[0], SCHEMES.index(r[1]), r[2]))
    datasets = sorted({r[0] for r in runs})
    schemes = [s for s in SCHEMES if any(r[1] == s for r in runs)]
    return runs, datasets, schemes


def table(runs, datasets, schemes):
    """cells[(scheme, dataset)] = {n, mean, std, diff} in percent, and the runs left out."""
    values = {}
    left_out = []
    for dataset, scheme, seed, out in runs:
        state, top1 = run_state(out)
        if state == "finished":
            values.setdefault((scheme, dataset), []).append(top1 * 100)
        else:
            left_out.append((state, dataset, scheme, seed, out))
    cells = {}
    for key, tops in values.items():
        cells[key] = {"n": len(tops), "mean": statistics.mean(tops),
                      "std": statistics.stdev(tops) if len(tops) > 1 else None}
    for (scheme, dataset), cell in cells.items():
        gqa = cells.get(("GQA", dataset))
        cell["diff"] = cell["mean"] - gqa["mean"] if gqa else None
    return cells, left_out


def fmt(value, sign=False):
    """Two decimals (with a sign when `sign`), a rounded -0 written as 0; None as ""."""
    if value is None:
        return ""
    text = f"{value:+.2f}" if sign else f"{value:.2f}"
    if text == "-0.00":
        text = "+0.00" if sign else "0.00"
    return text


def markdown(cells, left_out, datasets, schemes):
    lines = ["Top-1 (%) on the test split: mean ± sample standard deviation over seeds (n "
             "seeds); Δ: the mean minus GQA's on the same dataset.", "",
             "| scheme | " + " | ".join(datasets) + " |",
             "|---|" + "---|" * len(datasets)]
    for scheme in schemes:
        row = []
        for dataset in datasets:
            cell = cells.get((scheme, dataset))
            if cell is None:
                row.append("no finished run")
                continue
            text = fmt(cell["mean"])
            text += f" ± {fmt(cell['std'])}" if cell["std"] is not None else " ± n/a"
            text += f" (n={cell['n']})"
            if scheme != "GQA":
                text += f", Δ {fmt(cell['diff'], True)}" if cell["diff"] is not None \
                    else ", Δ n/a"
            row.append(text)
        lines.append(f"| {scheme} | " + " | ".join(row) + " |")
    if left_out:
        lines += ["", "Not in the table:"]
        for state, dataset, scheme, seed, out in left_out:
            lines.append(f"- {state}: {dataset} {scheme} seed {seed} ({out})")
    return "\n".join(lines) + "\n"


def csv_text(cells, left_out, datasets, schemes):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["scheme", "dataset", "seeds", "mean_top1", "std_top1", "diff_to_gqa",
                     "not_finished"])
    for scheme in schemes:
        for dataset in datasets:
            cell = cells.get((scheme, dataset), {"n": 0, "mean": None, "std": None,
                                                 "diff": None})
            missing = sum(1 for r in left_out if r[1] == dataset and r[2] == scheme)
            writer.writerow([scheme, dataset, cell["n"], fmt(cell["mean"]), fmt(cell["std"]),
                             fmt(cell["diff"], True), missing])
    return buffer.getvalue()


def results(argv):
    source, csv_path, markdown_path = None, None, None
    i = 0
    while i < len(argv):
        if argv[i] in ("--csv", "--markdown") and i + 1 < len(argv):
            if argv[i] == "--csv":
                csv_path = argv[i + 1]
            else:
                markdown_path = argv[i + 1]
            i += 2
        elif source is None and not argv[i].startswith("--"):
            source = argv[i]
            i += 1
        else:
            fail(f"results: unexpected argument {argv[i]!r} (usage: results "
                 "RUN_ROOT_OR_SWEEP_FILE [--csv FILE] [--markdown FILE])")
    if source is None:
        fail("results: wants a run root or a sweep file")
    if os.path.isdir(source):
        runs, datasets, schemes = collect_from_root(source)
        if not runs:
            fail(f"{source}: no runs under it (<dataset>/<scheme>/seed<S> directories)")
    elif os.path.isfile(source):
        runs, datasets, schemes = collect_from_sweep(load_or_fail(source))
    else:
        fail(f"{source}: no such file or directory")
    cells, left_out = table(runs, datasets, schemes)
    text = markdown(cells, left_out, datasets, schemes)
    sys.stdout.write(text)
    for path, content in ((markdown_path, text), (csv_path, csv_text(cells, left_out, datasets,
                                                                     schemes))):
        if path:
            with open(path, "w", encoding="utf-8") as f:
                f.write(content)


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(__doc__)
        return 0 if len(argv) >= 2 else 2
    command, rest = argv[1], argv[2:]
    if command == "count" and len(rest) == 1:
        print(len(grid(load_or_fail(rest[0]))))
    elif command == "list" and len(rest) in (1, 2) and rest[1:] in ([], ["--commands"]):
        points = grid(load_or_fail(rest[0]))
        for i, p in enumerate(points):
            if rest[1:]:
                print("dgqa train " + " ".join(shell_quote(a) for a in p["args"]))
            else:
                print(f"{i}\t{run_state(p['out'])[0]}\t{p['out']}")
    elif command == "args" and len(rest) == 2:
        sys.stdout.write("".join(a + "\0" for a in point(rest[0], rest[1])["args"]))
    elif command == "overrides" and len(rest) == 2:
        sys.stdout.write("".join(a + "\0" for a in point(rest[0], rest[1])["overrides"]))
    elif command in ("out", "config") and len(rest) == 2:
        print(point(rest[0], rest[1])[command])
    elif command == "finished" and len(rest) == 1:
        return 0 if run_state(rest[0])[0] == "finished" else 1
    elif command == "results":
        results(rest)
    else:
        fail(f"unknown command or wrong arguments: {' '.join(argv[1:])} (see --help)")
    return 0


def shell_quote(text):
    return text if re.fullmatch(r"[A-Za-z0-9_./=:+,@%-]+", text) else \
        "'" + text.replace("'", "'\\''") + "'"


if __name__ == "__main__":
    sys.exit(main(sys.argv))
