#!/usr/bin/env python3
"""The sweep kit: launch/sweep.sh, tools/sweep.py results, launch/slurm_sweep.{sh,sbatch}.

Usage: sweep_test.py DGQA_BINARY [CASE...]

Cases (all by default):
  local      a sweep of 2 schemes x 2 datasets x 2 seeds of a tiny ViT, trained a few steps on
             IDX files made here; its table against means and standard deviations this test
             computes from the metrics files; a rerun skips every run; a run made unfinished
             is listed as such, and the next rerun finishes it alone
  ranks      a sweep through launch/mpirun.sh with --ranks 2 (skipped without mpirun)
  failure    the first failing run stops the sweep with its exit code, naming it
  stop       SIGTERM to launch/sweep.sh: the current run checkpoints, the sweep exits 75
  table      hand-written metrics files with known top-1 values give an exact table
  slurm      launch/slurm_sweep.sh and the array script with stand-in sbatch and srun on PATH
  bad        bad sweep files: exit 2, one line naming the file and the field
"""
import csv
import json
import os
import random
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP_SH = os.path.join(REPO, "launch", "sweep.sh")
SWEEP_PY = os.path.join(REPO, "tools", "sweep.py")
STEPS = 8


def check(condition, message):
    if not condition:
        raise AssertionError(message)


def run(command, env=None, cwd=None, timeout=120):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(command, capture_output=True, text=True, env=full_env, cwd=cwd,
                          timeout=timeout)


def write_idx(directory, name, count, seed, unbalanced=False):
    """IDX files of `count` 8x8 images of 4 classes, class k bright in rows 2k and 2k+1; with
    `unbalanced` class k has k + 1 shares of the images (so that even a model that answers one
    class scores differently by the class it answers)."""
    rng = random.Random(seed)
    labels = [i % 4 for i in range(count)]
    if unbalanced:
        labels = [k for k in range(4) for _ in range(count * (k + 1) // 10)]
    rng.shuffle(labels)
    pixels = bytearray()
    for label in labels:
        for row in range(8):
            pixels += bytes((150 if row // 2 == label else 0) + rng.randrange(90) for _ in range(8))
    images = os.path.join(directory, name + "-images-idx3-ubyte")
    with open(images, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, count, 8, 8) + bytes(pixels))
    labels_path = os.path.join(directory, name + "-labels-idx1-ubyte")
    with open(labels_path, "wb") as f:
        f.write(struct.pack(">II", 0x801, count) + bytes(labels))
    return images, labels_path


def data_overrides(directory, name, seed):
    train_images, train_labels = write_idx(directory, name + "-train", 48, seed)
    test_images, test_labels = write_idx(directory, name + "-t10k", 40, seed + 100, True)
    return [f"data.train_images={train_images}", f"data.train_labels={train_labels}",
            f"data.test_images={test_images}", f"data.test_labels={test_labels}"]


def write_config(directory):
    """A tiny config; its data files are dataset "a"'s (dataset "b" overrides them)."""
    overrides = dict(o.split("=", 1) for o in data_overrides(directory, "a", 1))
    path = os.path.join(directory, "config.pbtxt")
    with open(path, "w") as f:
        f.write(f"""model {{ image_size: 8 patch_size: 4 in_channels: 1 num_classes: 4 embed_dim: 16
        depth: 2 num_heads: 4 num_kv_heads: 2 attention: MHA }}
data {{ format: IDX train_images: "{overrides['data.train_images']}"
       train_labels: "{overrides['data.train_labels']}"
       test_images: "{overrides['data.test_images']}" test_labels: "{overrides['data.test_labels']}"
       prefetch_batches: 0 }}
optimizer {{ lr: 1e-2 }}
train {{ global_batch_size: 8 max_steps: {STEPS} eval_batch_size: 40 log_every_steps: 2
        threads: 1 }}
""")
    return path


def write_json(path, content):
    with open(path, "w") as f:
        json.dump(content, f, indent=1)
    return path


def last_eval_top1(run_dir):
    """The top-1 of the last eval record, read here without tools/sweep.py."""
    top1 = None
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if record["kind"] == "eval":
                top1 = record["top1"]
    return top1


def read_csv(path):
    with open(path) as f:
        return {(row["scheme"], row["dataset"]): row for row in csv.DictReader(f)}


# ---- local: a real sweep ----

def case_local(binary, work):
    config = write_config(work)
    root = os.path.join(work, "runs")
    sweep = write_json(os.path.join(work, "sweep.json"), {
        "base_config": config, "out": root, "schemes": ["GQA", "PGQA"], "seeds": [1, 2],
        "set": ["train.log_every_steps=1"],
        "datasets": [{"name": "a"},
                     {"name": "b", "set": data_overrides(work, "b", 2)}]})
    env = {"DGQA_BIN": binary}
    result = run([SWEEP_SH, sweep], env=env, timeout=300)
    check(result.returncode == 0, f"the sweep exited {result.returncode}:\n{result.stderr}")
    runs = [(d, s, seed) for d in "ab" for s in ("GQA", "PGQA") for seed in (1, 2)]
    for i, (d, s, seed) in enumerate(runs):
        out = os.path.join(root, d, s, f"seed{seed}")
        check(f"[{i + 1}/8] {out}: " in result.stderr, f"no progress line for {out}:\n"
              f"{result.stderr}")
        check(os.path.isfile(os.path.join(out, "model.safetensors")), f"{out}: no weights")
        with open(os.path.join(out, "metrics.jsonl")) as f:
            records = [json.loads(line) for line in f]
        check(max(r["step"] for r in records if r["kind"] == "eval") == STEPS,
              f"{out}: no evaluation at step {STEPS}")
        # The scheme and the seed reached the run (their config copy in the checkpoint).
        with open(os.path.join(out, "checkpoints", f"step_{STEPS:08d}", "state.pbtxt")) as f:
            state = f.read()
        check(f"attention: {s}" in state and f"seed: {seed}" in state,
              f"{out}: the checkpoint's config is not {s} with seed {seed}")

    csv_path, md_path = os.path.join(work, "t.csv"), os.path.join(work, "t.md")
    result = run([sys.executable, SWEEP_PY, "results", sweep, "--csv", csv_path,
                  "--markdown", md_path])
    check(result.returncode == 0, f"results exited {result.returncode}: {result.stderr}")
    with open(md_path) as f:
        check(f.read() == result.stdout, "the markdown file is not what was printed")
    rows = read_csv(csv_path)
    check(len(rows) == 4, f"the CSV has {len(rows)} cells, not 4")
    means, stds = {}, {}
    for d in "ab":
        for s in ("GQA", "PGQA"):
            tops = [100 * last_eval_top1(os.path.join(root, d, s, f"seed{seed}"))
                    for seed in (1, 2)]
            means[(s, d)] = sum(tops) / 2
            stds[(s, d)] = abs(tops[0] - tops[1]) / 2 ** 0.5  # the sample std of two values
            row = rows[(s, d)]
            check(row["seeds"] == "2" and row["not_finished"] == "0", f"{s} {d}: {row}")
            check(row["mean_top1"] == f"{means[(s, d)]:.2f}",
                  f"{s} {d}: mean {row['mean_top1']}, expected {means[(s, d)]:.2f}")
            check(row["std_top1"] == f"{stds[(s, d)]:.2f}", f"{s} {d}: std {row['std_top1']}, "
                  f"expected {stds[(s, d)]:.2f}")
            check(f"| {s} |" in result.stdout and
                  f"{means[(s, d)]:.2f} ± {stds[(s, d)]:.2f} (n=2)" in result.stdout,
                  f"{s} {d}: the cell is not in the markdown:\n{result.stdout}")
        diff = means[("PGQA", d)] - means[("GQA", d)]
        check(rows[("PGQA", d)]["diff_to_gqa"] == f"{diff:+.2f}", f"{d}: diff "
              f"{rows[('PGQA', d)]['diff_to_gqa']}, expected {diff:+.2f}")
        check(rows[("GQA", d)]["diff_to_gqa"] == "+0.00", f"{d}: GQA's own diff")
    # The checks above mean something only if the runs' results differ.
    check(len(set(means.values())) > 1 and any(stds.values()),
          f"the fixture's runs are all alike (means {means}, stds {stds})")

    # A rerun skips every run and writes nothing.
    stamps = {p: os.stat(p).st_mtime_ns for p in
              (os.path.join(root, d, s, f"seed{seed}", "metrics.jsonl") for d, s, seed in runs)}
    result = run([SWEEP_SH, sweep], env=env)
    check(result.returncode == 0, f"the rerun exited {result.returncode}:\n{result.stderr}")
    check(result.stderr.count("finished, skipped") == 8, f"the rerun skipped not all 8 runs:\n"
          f"{result.stderr}")
    check(all(os.stat(p).st_mtime_ns == t for p, t in stamps.items()), "the rerun wrote metrics")
    result = run([SWEEP_SH, sweep, "--dry-run"], env=env)
    check(result.returncode == 0 and result.stdout == "", f"a dry run of a finished sweep "
          f"printed commands:\n{result.stdout}")

    # One run unfinished (no final weights): listed, left out of the table, run again alone.
    unfinished = os.path.join(root, "b", "PGQA", "seed2")
    os.remove(os.path.join(unfinished, "model.safetensors"))
    result = run([sys.executable, SWEEP_PY, "results", sweep, "--csv", csv_path])
    check(f"- unfinished: b PGQA seed 2 ({unfinished})" in result.stdout, "the unfinished run "
          f"is not listed:\n{result.stdout}")
    row = read_csv(csv_path)[("PGQA", "b")]
    tops = 100 * last_eval_top1(os.path.join(root, "b", "PGQA", "seed1"))
    check(row["seeds"] == "1" and row["not_finished"] == "1" and row["std_top1"] == "" and
          row["mean_top1"] == f"{tops:.2f}", f"the cell without the unfinished run: {row}")
    result = run([SWEEP_SH, sweep, "--dry-run"], env=env)
    expected = shlex.join([binary, "train", "--config", config, "--set",
                           "model.attention=PGQA", "--set", "seed=2", "--set",
                           "train.log_every_steps=1"] + [
                          a for o in data_overrides(work, "b", 2) for a in ("--set", o)] + [
                          "--out", unfinished, "--resume", "auto"])
    check(shlex.split(result.stdout) == shlex.split(expected), f"the dry run printed\n"
          f"{result.stdout}\nnot\n{expected}")
    result = run([SWEEP_SH, sweep], env=env)
    check(result.returncode == 0, f"the third run exited {result.returncode}:\n{result.stderr}")
    check(result.stderr.count("finished, skipped") == 7 and f"[8/8] {unfinished}: " in
          result.stderr, f"the third run did not run the unfinished run alone:\n{result.stderr}")
    check(os.path.isfile(os.path.join(unfinished, "model.safetensors")),
          "the unfinished run has no weights after the rerun")


# ---- failure ----

def case_failure(binary, work):
    config = write_config(work)
    root = os.path.join(work, "runs")
    sweep = write_json(os.path.join(work, "sweep.json"), {
        "base_config": config, "out": root, "schemes": ["GQA"], "seeds": [0],
        "datasets": [{"name": "broken", "set": [f"data.train_images={work}/none"]},
                     {"name": "a"}]})
    result = run([SWEEP_SH, sweep], env={"DGQA_BIN": binary})
    out = os.path.join(root, "broken", "GQA", "seed0")
    check(result.returncode == 2, f"a sweep whose first run fails (2) exited {result.returncode}")
    check(f"[1/2] {out} failed with exit code 2" in result.stderr, f"the failure is not named:"
          f"\n{result.stderr}")
    check(not os.path.exists(os.path.join(root, "a")), "the run after the failure started")


# ---- ranks: through launch/mpirun.sh ----

def case_ranks(binary, work):
    if shutil.which("mpirun") is None:
        print("skip: ranks: no mpirun")
        return
    config = write_config(work)
    root = os.path.join(work, "runs")
    sweep = write_json(os.path.join(work, "sweep.json"), {
        "base_config": config, "out": root, "schemes": ["KDGQA"], "seeds": [3],
        "datasets": [{"name": "a"}]})
    env = {"DGQA_BIN": binary}
    out = os.path.join(root, "a", "KDGQA", "seed3")
    result = run([SWEEP_SH, sweep, "--ranks", "2", "--dry-run"], env=env)
    check(shlex.split(result.stdout) == [os.path.join(REPO, "launch", "mpirun.sh"), "-n", "2",
                                         "--", "train", "--config", config, "--set",
                                         "model.attention=KDGQA", "--set", "seed=3", "--out",
                                         out, "--resume", "auto"],
          f"the dry run with --ranks 2 printed {result.stdout}")
    check(not os.path.exists(root), "the dry run wrote runs")
    result = run([SWEEP_SH, sweep, "--ranks", "2"], env=env, timeout=300)
    check(result.returncode == 0, f"the sweep on 2 ranks exited {result.returncode}:\n"
          f"{result.stderr}")
    check(os.path.isfile(os.path.join(out, "model.safetensors")) and
          any(name.startswith("rank1.log") for name in os.listdir(os.path.join(out, "logs"))),
          f"{out}: no weights, or no log of rank 1")


# ---- stop: SIGTERM to the sweep ----

def case_stop(binary, work):
    config = write_config(work)
    root = os.path.join(work, "runs")
    sweep = write_json(os.path.join(work, "sweep.json"), {
        "base_config": config, "out": root, "schemes": ["GQA"], "seeds": [0, 1],
        "set": ["train.max_steps=1000000", "train.log_every_steps=1"],
        "datasets": [{"name": "a"}]})
    out = os.path.join(root, "a", "GQA", "seed0")
    sweep_process = subprocess.Popen([SWEEP_SH, sweep], stderr=subprocess.PIPE, text=True,
                                     env=dict(os.environ, DGQA_BIN=binary))
    metrics = os.path.join(out, "metrics.jsonl")
    for _ in range(600):
        if os.path.exists(metrics) and os.path.getsize(metrics) > 0:
            break
        time.sleep(0.05)
    check(os.path.exists(metrics), "the first run logged nothing in 30 s")
    sweep_process.send_signal(signal.SIGTERM)
    _, stderr = sweep_process.communicate(timeout=60)
    check(sweep_process.returncode == 75, f"the stopped sweep exited {sweep_process.returncode}"
          f", not 75:\n{stderr}")
    check(f"[1/2] {out} failed with exit code 75" in stderr and
          os.path.exists(os.path.join(out, "checkpoints", "latest")),
          f"no checkpoint, or the stop not reported:\n{stderr}")
    check(not os.path.exists(os.path.join(root, "a", "GQA", "seed1")),
          "the sweep went on to the next run")


# ---- table: hand-written metrics ----

def write_run(directory, top1s_by_step, finished=True):
    os.makedirs(directory)
    with open(os.path.join(directory, "metrics.jsonl"), "w") as f:
        for step, top1 in top1s_by_step:
            f.write(json.dumps({"kind": "train", "step": step, "loss": 1.0}) + "\n")
            f.write(json.dumps({"kind": "eval", "step": step, "loss": 1.0, "top1": top1,
                                "top5": 1.0, "examples": 100}) + "\n")
    if finished:
        open(os.path.join(directory, "model.safetensors"), "w").close()


def case_table(binary, work):
    root = os.path.join(work, "runs")
    run_dir = lambda d, s, seed: os.path.join(root, d, s, f"seed{seed}")
    # cifar: GQA 80, 82, 84 -> 82.00 ± 2.00; KDGQA 85, 86 (seed 2 missing) -> 85.50 ± 0.71,
    # +3.50; PGQA 70, 71, 72 -> 71.00 ± 1.00, -11.00.
    # food: GQA 50 (seed 1: an earlier eval only, no final one; seed 2 unfinished) -> 50.00 ± n/a;
    # KDGQA 40, 45, 50 -> 45.00 ± 5.00, -5.00; PGQA: no run at all.
    for seed, top1 in enumerate([0.80, 0.82, 0.84]):
        write_run(run_dir("cifar", "GQA", seed), [(10, 0.1), (20, top1)])
    for seed, top1 in enumerate([0.85, 0.86]):
        write_run(run_dir("cifar", "KDGQA", seed), [(20, top1)])
    for seed, top1 in enumerate([0.70, 0.71, 0.72]):
        write_run(run_dir("cifar", "PGQA", seed), [(20, top1)])
    write_run(run_dir("food", "GQA", 0), [(5, 0.3), (20, 0.5)])
    write_run(run_dir("food", "GQA", 1), [(5, 0.9)])
    with open(os.path.join(run_dir("food", "GQA", 1), "metrics.jsonl"), "a") as f:
        f.write(json.dumps({"kind": "train", "step": 6, "loss": 1.0}) + "\n")
    write_run(run_dir("food", "GQA", 2), [(20, 0.99)], finished=False)
    for seed, top1 in enumerate([0.40, 0.45, 0.50]):
        write_run(run_dir("food", "KDGQA", seed), [(20, top1)])
    sweep = write_json(os.path.join(work, "sweep.json"), {
        "base_config": "unused.pbtxt", "out": root, "schemes": ["GQA", "KDGQA", "PGQA"],
        "seeds": [0, 1, 2], "datasets": [{"name": "cifar"}, {"name": "food"}]})
    expected = f"""Top-1 (%) on the test split: mean ± sample standard deviation over seeds (n seeds); Δ: the mean minus GQA's on the same dataset.

| scheme | cifar | food |
|---|---|---|
| GQA | 82.00 ± 2.00 (n=3) | 50.00 ± n/a (n=1) |
| KDGQA | 85.50 ± 0.71 (n=2), Δ +3.50 | 45.00 ± 5.00 (n=3), Δ -5.00 |
| PGQA | 71.00 ± 1.00 (n=3), Δ -11.00 | no finished run |

Not in the table:
- missing: cifar KDGQA seed 2 ({run_dir("cifar", "KDGQA", 2)})
- unfinished: food GQA seed 1 ({run_dir("food", "GQA", 1)})
- unfinished: food GQA seed 2 ({run_dir("food", "GQA", 2)})
- missing: food PGQA seed 0 ({run_dir("food", "PGQA", 0)})
- missing: food PGQA seed 1 ({run_dir("food", "PGQA", 1)})
- missing: food PGQA seed 2 ({run_dir("food", "PGQA", 2)})
"""
    csv_path = os.path.join(work, "t.csv")
    result = run([sys.executable, SWEEP_PY, "results", sweep, "--csv", csv_path])
    check(result.returncode == 0, f"results exited {result.returncode}: {result.stderr}")
    check(result.stdout == expected, f"the table from the sweep file:\n{result.stdout}\n"
          f"expected:\n{expected}")
    with open(csv_path) as f:
        check(f.read() == """scheme,dataset,seeds,mean_top1,std_top1,diff_to_gqa,not_finished
GQA,cifar,3,82.00,2.00,+0.00,0
GQA,food,1,50.00,,+0.00,2
KDGQA,cifar,2,85.50,0.71,+3.50,1
KDGQA,food,3,45.00,5.00,-5.00,0
PGQA,cifar,3,71.00,1.00,-11.00,0
PGQA,food,0,,,,3
""", "the CSV differs")
    # From the run root alone the missing runs are unknown; the rest is the same table.
    result = run([sys.executable, SWEEP_PY, "results", root])
    check(result.returncode == 0, f"results ROOT exited {result.returncode}: {result.stderr}")
    expected_root = "\n".join(line for line in expected.split("\n")
                              if not line.startswith("- missing"))
    check(result.stdout == expected_root, f"the table from the run root:\n{result.stdout}\n"
          f"expected:\n{expected_root}")


# ---- slurm: the array with stand-ins ----

def case_slurm(binary, work):
    config = write_config(work)
    root = os.path.join(work, "runs")
    fake = os.path.join(work, "fake")
    os.makedirs(fake)
    log = os.path.join(work, "calls")
    for tool, status in (("sbatch", "echo 4242"), ("srun", "exit 0")):
        with open(os.path.join(fake, tool), "w") as f:
            # One line per call: the tool, then each argument on its own line; a blank line ends it.
            f.write(f'#!/bin/sh\n{{ echo "{tool}"; for a in "$@"; do echo "$a"; done; echo; }} '
                    f'>>"$FAKE_LOG"\n{status}\n')
        os.chmod(os.path.join(fake, tool), 0o755)
    env = {"PATH": fake + ":" + os.environ["PATH"], "FAKE_LOG": log, "DGQA_BIN": binary}
    sweep = write_json(os.path.join(work, "sweep.json"), {
        "base_config": config, "out": root, "schemes": ["GQA", "DGQA_EMA"], "seeds": [7, 8, 9],
        "set": ["train.max_steps=3"], "init_from": "/weights/mha.safetensors",
        "datasets": [{"name": "a", "set": ["data.mean=0.5"]},
                     {"name": "b", "config": "/configs/b.pbtxt", "init_from": "/weights/b.st"}]})

    def calls():
        with open(log) as f:
            blocks = f.read().split("\n\n")
        os.remove(log)
        return [b.split("\n") for b in blocks if b]

    result = run(["launch/slurm_sweep.sh", sweep, "--partition=cpu", "--", "--set", "x=1"],
                 env=env, cwd=REPO)
    check(result.returncode == 0 and result.stdout.strip() == "4242",
          f"slurm_sweep.sh exited {result.returncode}:\n{result.stderr}")
    check(calls() == [["sbatch", "--array=0-11", "--partition=cpu", "launch/slurm_sweep.sbatch",
                       sweep, "--set", "x=1"]], "the submission differs")
    result = run(["launch/slurm_sweep.sh", sweep, "--array=0-11%2"], env=env, cwd=REPO)
    check(calls() == [["sbatch", "--array=0-11%2", "launch/slurm_sweep.sbatch", sweep]],
          "an --array of the user's is not the only one")

    grid = [(d, s, seed) for d in "ab" for s in ("GQA", "DGQA_EMA") for seed in (7, 8, 9)]
    for index, (d, s, seed) in enumerate(grid):
        task_env = dict(env, SLURM_ARRAY_TASK_ID=str(index), SLURM_JOB_ID=str(500 + index),
                        SLURM_CPUS_PER_TASK="2")
        result = run(["bash", "launch/slurm_sweep.sbatch", sweep, "--set", "x=1"], env=task_env,
                     cwd=REPO)
        check(result.returncode == 0, f"array task {index} exited {result.returncode}:\n"
              f"{result.stderr}")
        expected = ["srun", "--kill-on-bad-exit=1", "--cpus-per-task=2", "--mpi=pmix", binary,
                    "train", "--config", config if d == "a" else "/configs/b.pbtxt",
                    "--out", os.path.join(root, d, s, f"seed{seed}"), "--resume", "auto",
                    "--set", f"model.attention={s}", "--set", f"seed={seed}",
                    "--set", "train.max_steps=3"]
        expected += ["--set", "data.mean=0.5", "--init-from", "/weights/mha.safetensors"] \
            if d == "a" else ["--init-from", "/weights/b.st"]
        expected += ["--set", "x=1"]
        got = calls()
        check(got == [expected], f"array task {index} ran\n{got}\nnot\n{[expected]}")
    # A finished grid point: the task ends at once, without srun.
    done = os.path.join(root, "a", "GQA", "seed8")
    write_run(done, [(3, 0.5)])
    result = run(["bash", "launch/slurm_sweep.sbatch", sweep],
                 env=dict(env, SLURM_ARRAY_TASK_ID="1", SLURM_JOB_ID="9"), cwd=REPO)
    check(result.returncode == 0 and not os.path.exists(log) and "already finished" in
          result.stderr, f"the finished grid point ran again:\n{result.stderr}")
    result = run(["bash", "launch/slurm_sweep.sbatch", sweep],
                 env=dict(env, SLURM_ARRAY_TASK_ID="12", SLURM_JOB_ID="9"), cwd=REPO)
    check(result.returncode == 2 and "no grid point '12'" in result.stderr,
          f"task 12 of a 12-point grid: exit {result.returncode}:\n{result.stderr}")
    # The array's log: one per task, every attempt appended.
    with open(os.path.join(REPO, "launch", "slurm_sweep.sbatch")) as f:
        text = f.read()
    check("#SBATCH --open-mode=append" in text and "#SBATCH --requeue" in text and
          "#SBATCH --signal=B:USR1@" in text and "exec launch/slurm_train.sh" in text,
          "the array script lacks append logs, requeue, the USR1 warning or slurm_train.sh")


# ---- bad sweep files ----

def case_bad(binary, work):
    good = {"base_config": "c.pbtxt", "out": "runs", "schemes": ["GQA"], "seeds": [0],
            "datasets": [{"name": "a"}]}
    cases = [
        ("missing", {k: v for k, v in good.items() if k != "schemes"}, "field schemes: missing"),
        ("scheme", dict(good, schemes=["GQA", "GQX"]), "field schemes[1]: \"GQX\" is not one"),
        ("seed", dict(good, seeds=[0, "1"]), "field seeds[1]: wants an integer"),
        ("unknown", dict(good, seed=[1]), "field seed: unknown"),
        ("dataset", dict(good, datasets=[{"name": "a/b"}]), "field datasets[0].name:"),
        ("twice", dict(good, datasets=[{"name": "a"}, {"name": "a"}]),
         "field datasets[1].name: \"a\" is listed twice"),
        ("set", dict(good, datasets=[{"name": "a", "set": ["seed"]}]),
         "field datasets[0].set[0]: wants \"path=value\""),
        ("init", dict(good, init_from=3), "field init_from: wants a non-empty string"),
        ("seeds", dict(good, seeds=[4, 5, 4]), "field seeds: 4 is listed twice"),
    ]
    for name, content, message in cases:
        path = write_json(os.path.join(work, name + ".json"), content)
        for command in ([SWEEP_SH, path], [sys.executable, SWEEP_PY, "results", path],
                        ["launch/slurm_sweep.sh", path]):
            result = run(command, env={"DGQA_BIN": binary}, cwd=REPO)
            lines = result.stderr.strip().split("\n")
            check(result.returncode == 2 and len(lines) == 1 and path in lines[0] and
                  message in lines[0], f"{name}: {command[0]} exited {result.returncode}, said:"
                  f"\n{result.stderr}\n(expected exit 2 and one line with {path}: {message})")
    path = os.path.join(work, "syntax.json")
    with open(path, "w") as f:
        f.write('{"schemes": ["GQA",]}')
    result = run([SWEEP_SH, path], env={"DGQA_BIN": binary})
    check(result.returncode == 2 and f"{path}: not JSON" in result.stderr and "line 1" in
          result.stderr, f"a JSON syntax error: {result.stderr}")


CASES = {"local": case_local, "ranks": case_ranks, "failure": case_failure, "stop": case_stop,
         "table": case_table, "slurm": case_slurm, "bad": case_bad}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    names = sys.argv[2:] or list(CASES)
    failed = []
    for name in names:
        work = tempfile.mkdtemp(prefix=f"dgqa_sweep_{name}_")
        try:
            CASES[name](binary, work)
            print(f"ok: {name}")
        except AssertionError as e:
            print(f"FAIL: {name}: {e}")
            failed.append(name)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
