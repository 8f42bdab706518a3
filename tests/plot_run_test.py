#!/usr/bin/env python3
"""Tests tools/plot_run.py.

Usage: plot_run_test.py errors PLOT_RUN
       plot_run_test.py runs PLOT_RUN DGQA_BINARY

errors: a missing run directory, a missing metrics.jsonl, a line that is not JSON, one that is
not an object and a record without a field each exit 2 with a message naming the path (and the
line), before anything is written; a bad --size exits 2.

runs: trains a tiny KDGQA and a tiny DGQA_EMA ViT on a dataset made here, plots both, and checks
every PNG (signature, IHDR with its CRC, the requested width and height, IEND last) and every
data file against the run's metrics.jsonl: the curves as the train and eval records, the
allocation of every step (the latest allocation record at or before it, up to the last train
step) and the key norms and DGQA caches as their records. A hand-written GQA-like
metrics.jsonl checks the skipped key-norm figures and a null loss, another series without any
finite value. Exits 77 (skipped) when gnuplot is not installed.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

from idx_fixture import write_idx

WIDTH, HEIGHT = 640, 480
MAX_STEPS = 11
DEPTH = 2


def plot(tool, run_dir, *args):
    return subprocess.run([sys.executable, tool, run_dir, *args], capture_output=True,
                          text=True, timeout=120)


# ---- errors ----

def expect_error(tool, run_dir, *needles):
    result = plot(tool, run_dir)
    assert result.returncode == 2, (run_dir, result.returncode, result.stdout, result.stderr)
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)
    assert not os.path.exists(os.path.join(run_dir, "plots")), f"{run_dir}: plots written"


def errors(tool, scratch):
    missing = os.path.join(scratch, "no_such_run")
    expect_error(tool, missing, missing, "no such run directory")
    empty = os.path.join(scratch, "empty")
    os.mkdir(empty)
    expect_error(tool, empty, os.path.join(empty, "metrics.jsonl"), "no such file")
    train = '{"kind":"train","step":2,"epoch":0,"loss":1.5,"top1":0.25}\n'
    cases = {"not_json": (train + train + '{"kind":"train","step":\n', 3, "not JSON"),
             "not_object": (train + "[1, 2]\n", 2, "not a JSON object"),
             "no_field": ('{"kind":"eval","step":4,"loss":1.0,"top1":0.5}\n', 1,
                          "eval record without 'top5'"),
             "bad_layers": ('{"kind":"allocation","step":1,"layers":[2,2]}\n', 1,
                            "'layers' is not a list of lists")}
    for name, (text, line, message) in cases.items():
        run_dir = os.path.join(scratch, name)
        os.mkdir(run_dir)
        path = os.path.join(run_dir, "metrics.jsonl")
        with open(path, "w") as f:
            f.write(text)
        expect_error(tool, run_dir, f"{path}:{line}:", message)
    result = plot(tool, empty, "--size", "640x480")
    assert result.returncode == 2 and "WIDTH,HEIGHT" in result.stderr, result.stderr
    print(f"OK: {2 + len(cases)} bad inputs and a bad --size refused with exit code 2")


# ---- runs ----

def write_config(directory, attention):
    train_images, train_labels = write_idx(directory, "train", 64, 8, 1)
    test_images, test_labels = write_idx(directory, "t10k", 40, 8, 2)
    path = os.path.join(directory, attention + ".pbtxt")
    with open(path, "w") as f:
        f.write(f"""seed: 3
model {{ image_size: 8 patch_size: 4 in_channels: 1 num_classes: 4 embed_dim: 16
        depth: {DEPTH} num_heads: 4 num_kv_heads: 2 attention: {attention} dgqa_window: 3 }}
data {{ format: IDX train_images: "{train_images}" train_labels: "{train_labels}"
       test_images: "{test_images}" test_labels: "{test_labels}" }}
optimizer {{ lr: 3e-3 }}
train {{ global_batch_size: 8 max_steps: {MAX_STEPS} eval_every_steps: 4 eval_batch_size: 16
        log_every_steps: 2 threads: 1 }}
""")
    return path


def check_png(path):
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: no PNG signature"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR"), f"{path}: the first chunk is not IHDR"
    (crc,) = struct.unpack(">I", data[29:33])
    assert crc == zlib.crc32(data[12:29]), f"{path}: IHDR CRC"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (WIDTH, HEIGHT), f"{path}: {width}x{height}"
    assert data[-12:] == struct.pack(">I4sI", 0, b"IEND", zlib.crc32(b"IEND")), f"{path}: IEND"


def read_data(path):
    with open(path) as f:
        lines = f.read().splitlines()
    assert lines and lines[0].startswith("# "), f"{path}: no header"
    return [tuple(float(v) for v in line.split()) for line in lines[1:]]


def records(metrics, kind):
    return [r for r in metrics if r["kind"] == kind]


def value(v):
    return float("nan") if v is None else float(v)


def same(rows, expected, what):
    # NaN compares by its text, every other number exactly.
    assert [tuple(map(repr, r)) for r in rows] == [tuple(repr(value(v)) for v in e)
                                                   for e in expected], (what, rows, expected)


def check_plots(metrics, out, stdout):
    """The files of one plotted run against its metrics records; returns the PNG names."""
    pngs = []
    train, evals = records(metrics, "train"), records(metrics, "eval")
    same(read_data(os.path.join(out, "curves_train.dat")),
         [(r["step"], r["loss"], r["top1"]) for r in train], "curves_train.dat")
    same(read_data(os.path.join(out, "curves_eval.dat")),
         [(r["step"], r["loss"], r["top1"], r["top5"]) for r in evals], "curves_eval.dat")
    pngs.append("curves.png")

    allocations = records(metrics, "allocation")
    last_train = max(r["step"] for r in train)
    for layer in range(len(allocations[0]["layers"])):
        # The allocation of every step, expanded from the tool's intervals...
        drawn = {}
        for first, last, group, heads in read_data(
                os.path.join(out, f"allocation_layer{layer}.dat")):
            for step in range(int(first), int(last) + 1):
                drawn.setdefault(step, {})[int(group)] = int(heads)
        drawn = {step: [by_group[g] for g in sorted(by_group)] for step, by_group in drawn.items()}
        # ... against the latest allocation record at or before it.
        expected = {}
        for step in range(allocations[0]["step"], last_train + 1):
            expected[step] = [r for r in allocations if r["step"] <= step][-1]["layers"][layer]
        assert drawn == expected, (layer, drawn, expected)
        pngs.append(f"allocation_layer{layer}.png")

    norms, caches = records(metrics, "key_norms"), records(metrics, "dgqa_cache")
    for layer in range(len(norms[0]["layers"]) if norms else 0):
        same(read_data(os.path.join(out, f"key_norms_layer{layer}.dat")),
             [(r["step"], *r["layers"][layer]) for r in norms], f"key norms {layer}")
        cache_path = os.path.join(out, f"dgqa_cache_layer{layer}.dat")
        if caches:
            same(read_data(cache_path), [(r["step"], *r["layers"][layer]) for r in caches],
                 f"caches {layer}")
        else:
            assert not os.path.exists(cache_path), cache_path
        pngs.append(f"key_norms_layer{layer}.png")

    written = {line for line in stdout.splitlines() if not line.startswith("note: ")}
    for name in pngs:
        path = os.path.join(out, name)
        assert path in written, (path, stdout)
        check_png(path)
    assert set(os.listdir(out)) == {os.path.basename(p) for p in written}, (os.listdir(out),
                                                                            stdout)
    return pngs


def read_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def runs(tool, binary, scratch):
    for attention in ("KDGQA", "DGQA_EMA"):
        run_dir = os.path.join(scratch, attention)
        command = [binary, "train", "--config", write_config(scratch, attention), "--out",
                   run_dir]
        run = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, f"{' '.join(command)} exited {run.returncode}:\n{run.stderr}"
        out = os.path.join(scratch, attention + "_plots")
        result = plot(tool, run_dir, "--out", out, "--size", f"{WIDTH},{HEIGHT}")
        assert result.returncode == 0, (attention, result.stdout, result.stderr)
        metrics = read_metrics(run_dir)
        pngs = check_plots(metrics, out, result.stdout)
        assert len(pngs) == 1 + 2 * DEPTH, pngs
        if attention == "DGQA_EMA":  # the heat map shows a change
            changes = {tuple(map(tuple, r["layers"])) for r in records(metrics, "allocation")}
            assert len(changes) > 1, changes
        print(f"OK: {attention}: {len(pngs)} PNGs and their data")

    # GQA-like: one allocation, no key norms, a non-finite loss (null); default --out.
    run_dir = os.path.join(scratch, "gqa")
    os.mkdir(run_dir)
    lines = [{"kind": "allocation", "step": 1, "layers": [[2, 2], [2, 2], [2, 2]]},
             {"kind": "train", "step": 5, "epoch": 0, "loss": 1.25, "top1": 0.5},
             {"kind": "bad_images", "step": 5, "count": 1},
             {"kind": "train", "step": 9, "epoch": 0, "loss": None, "top1": 0.75},
             {"kind": "eval", "step": 9, "loss": 1.5, "top1": 0.5, "top5": 1.0, "examples": 8}]
    with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    result = plot(tool, run_dir, "--size", f"{WIDTH},{HEIGHT}")
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "note: no key_norms records" in result.stdout, result.stdout
    out = os.path.join(run_dir, "plots")
    pngs = check_plots(read_metrics(run_dir), out, result.stdout)
    assert pngs == ["curves.png"] + [f"allocation_layer{i}.png" for i in range(3)], pngs
    # By hand: one allocation from step 1 to the last train step, 9.
    assert read_data(os.path.join(out, "allocation_layer2.dat")) == [(1, 9, 0, 2), (1, 9, 1, 2)]
    print("OK: GQA-like metrics: key norms skipped, NaN loss")

    # Diverged at once: no finite loss, a K/V head without a finite key norm (gnuplot refuses
    # a series without a finite value; the panel says so instead).
    run_dir = os.path.join(scratch, "diverged")
    os.mkdir(run_dir)
    lines = [{"kind": "allocation", "step": 1, "layers": [[1, 1]]},
             {"kind": "key_norms", "step": 1, "layers": [[None, 2.5]]},
             {"kind": "train", "step": 1, "epoch": 0, "loss": None, "top1": 0.5}]
    with open(os.path.join(run_dir, "metrics.jsonl"), "w") as f:
        f.writelines(json.dumps(line) + "\n" for line in lines)
    result = plot(tool, run_dir, "--size", f"{WIDTH},{HEIGHT}")
    assert result.returncode == 0, (result.stdout, result.stderr)
    pngs = check_plots(read_metrics(run_dir), os.path.join(run_dir, "plots"), result.stdout)
    assert len(pngs) == 3, pngs
    print("OK: no finite loss, a key norm without a finite value")


def main():
    mode, tool = sys.argv[1], sys.argv[2]
    scratch = tempfile.mkdtemp(prefix="plot_run_test_")
    try:
        if mode == "errors":
            errors(tool, scratch)
        elif shutil.which("gnuplot") is None:
            print("SKIP: gnuplot is not installed (launch/install_deps.sh --with-bench)")
            sys.exit(77)
        else:
            runs(tool, sys.argv[3], scratch)
    finally:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
