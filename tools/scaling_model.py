#!/usr/bin/env python3
"""Analytic model of data-parallel (DDP-style) scaling of ViT training on N GPUs.

Predicts the step time, images/s and efficiency of weak scaling (a fixed batch per GPU) for
ViT-L/16 at 224 with G = 4 K/V heads by default, from an alpha-beta model of the gradient
all-reduce and of its overlap with backward. Python standard library only; --png needs gnuplot
(Debian gnuplot-nox: launch/install_deps.sh --with-bench).

  python3 tools/scaling_model.py                          # table for N = 8, 16, ..., 1024
  python3 tools/scaling_model.py --csv docs/scaling_model_vit_l.csv \
      --png docs/scaling_model_vit_l.png
  python3 tools/scaling_model.py --grad-dtype bf16 --batch-per-gpu 8 --topology ring
  python3 tools/scaling_model.py --self-test              # checks the formulas on hand cases

The model (S = gradient bytes, g = GPUs per node, n = N / g nodes, B = bandwidth per GPU and
direction, alpha = latency per ring step):

  parameters  counted from the shape (patch embedding, class token, position embedding, per
              block LN, Q (D x D), K and V (D x G*d each), output projection, MLP, final LN,
              head); S = parameters x bytes per gradient (fp32: 4, bf16: 2)
  FLOPs       forward/image = 2 x (linear weights) x (tokens they see) + 4 T^2 D per block
              (Q K^T and P V; T = 197 tokens incl. the class token, the patch embedding sees
              the 196 patches, the head the class token); training = 3 x forward, as
              model/flops.cc counts it
  compute     t_c = per-GPU batch x training FLOPs / (MFU x peak), or --gpu-ips, or --step-ms;
              backward t_b = 2/3 t_c (backward does twice forward's work); the optimizer and
              data loading are left out
  ring        T_ring(b, N) = 2 (N-1)/N x b / B + 2 (N-1) alpha (reduce-scatter + all-gather);
              flat over all N GPUs its slowest link sets B and alpha (InfiniBand once N > g)
  hierarchical T_hier(b) = [(g-1)/g x b / B_nvl + (g-1) alpha_nvl]        reduce-scatter in node
                         + [2 (n-1)/n x (b/g) / B_ib + 2 (n-1) alpha_ib]  ring all-reduce of
                           each GPU's 1/g shard across the nodes, the g rails in parallel
                         + [(g-1)/g x b / B_nvl + (g-1) alpha_nvl]        all-gather in node
              (for N <= g, the flat NVLink ring; with n = 1 the two are the same formula)
  overlap     S is cut into k = ceil(S / bucket) equal buckets, produced evenly over the
              backward (bucket i ready at i t_b / k) and all-reduced one after another, each in
              m = T(S/k); C = k m. Exposed communication after backward:
                  E = max(m, C - (t_b - t_b / k))
              i.e. what fits under the backward less its last bucket's share is hidden, and the
              last bucket's all-reduce never is (N = 1: E = 0)
  step        t = t_c + E; images/s = N x batch / t; efficiency = t_c / t
              (= images/s(N) / (N x images/s(1)), since one GPU has no communication)
"""

import argparse
import csv
import math
import os
import shutil
import subprocess
import sys
import tempfile

MIB = 1 << 20


# --- The model. Times in seconds, sizes in bytes, bandwidths in bytes/s. ---


def vit_parameters(image=224, patch=16, channels=3, dim=1024, depth=24, heads=16, kv_heads=4,
                   head_dim=None, mlp=4096, classes=1000):
    """Parameter count of a ViT with grouped-query attention (timm's layout, biases included)."""
    head_dim = head_dim or dim // heads
    patches = (image // patch) ** 2
    q_width, kv_width = heads * head_dim, kv_heads * head_dim
    embed = channels * patch * patch * dim + dim + dim + (patches + 1) * dim  # conv, cls, pos
    block = (2 * dim                                   # LayerNorm 1
             + dim * q_width + q_width                 # Q
             + 2 * (dim * kv_width + kv_width)         # K, V
             + q_width * dim + dim                     # output projection
             + 2 * dim                                 # LayerNorm 2
             + dim * mlp + mlp + mlp * dim + dim)      # MLP
    return embed + depth * block + 2 * dim + dim * classes + classes  # final LN, head


def vit_training_flops(image=224, patch=16, channels=3, dim=1024, depth=24, heads=16,
                       kv_heads=4, head_dim=None, mlp=4096, classes=1000):
    """Training FLOPs per image: 3 x forward (a multiply-add counts 2)."""
    head_dim = head_dim or dim // heads
    patches = (image // patch) ** 2
    tokens = patches + 1
    q_width, kv_width = heads * head_dim, kv_heads * head_dim
    block_weights = dim * q_width + 2 * dim * kv_width + q_width * dim + 2 * dim * mlp
    forward = (2 * channels * patch * patch * dim * patches      # patch embedding
               + depth * (2 * block_weights * tokens             # linear layers
                          + 4 * tokens * tokens * q_width)       # Q K^T and P V
               + 2 * dim * classes)                              # head (class token)
    return 3 * forward


def ring_allreduce_time(nbytes, n, bandwidth, alpha):
    """Ring all-reduce (reduce-scatter + all-gather) of nbytes over n ranks."""
    if n <= 1:
        return 0.0
    return 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * alpha


def hierarchical_allreduce_time(nbytes, n_gpus, per_node, bw_nvl, alpha_nvl, bw_ib, alpha_ib):
    """Reduce-scatter in the node, all-reduce of each 1/g shard across nodes, all-gather in node."""
    if n_gpus <= per_node:
        return ring_allreduce_time(nbytes, n_gpus, bw_nvl, alpha_nvl)
    if n_gpus % per_node:
        raise ValueError(f"{n_gpus} GPUs are not whole nodes of {per_node}")
    g, nodes = per_node, n_gpus // per_node
    in_node = (g - 1) / g * nbytes / bw_nvl + (g - 1) * alpha_nvl  # one of the two phases
    across = ring_allreduce_time(nbytes / g, nodes, bw_ib, alpha_ib)
    return 2 * in_node + across


def flat_ring_time(nbytes, n_gpus, per_node, bw_nvl, alpha_nvl, bw_ib, alpha_ib):
    """One ring over all GPUs: bounded by its slowest link (InfiniBand once it leaves a node)."""
    if n_gpus <= per_node:
        return ring_allreduce_time(nbytes, n_gpus, bw_nvl, alpha_nvl)
    return ring_allreduce_time(nbytes, n_gpus, bw_ib, alpha_ib)


def exposed_communication(per_bucket, buckets, backward):
    """Communication left after backward, k equal buckets produced evenly over the backward."""
    total = buckets * per_bucket
    return max(per_bucket, total - (backward - backward / buckets))


def predict(n_gpus, *, grad_bytes, compute, bucket_bytes, topology, per_node, bw_nvl,
            alpha_nvl, bw_ib, alpha_ib, batch):
    """One row of the table for n_gpus (a dict; times in seconds)."""
    backward = 2 / 3 * compute
    buckets = max(1, math.ceil(grad_bytes / bucket_bytes))
    allreduce = hierarchical_allreduce_time if topology == "hierarchical" else flat_ring_time
    per_bucket = allreduce(grad_bytes / buckets, n_gpus, per_node, bw_nvl, alpha_nvl, bw_ib,
                           alpha_ib)
    comm = buckets * per_bucket
    exposed = exposed_communication(per_bucket, buckets, backward) if n_gpus > 1 else 0.0
    step = compute + exposed
    return {"gpus": n_gpus, "nodes": max(1, math.ceil(n_gpus / per_node)), "buckets": buckets,
            "comm": comm, "exposed": exposed, "step": step,
            "images_per_sec": n_gpus * batch / step, "efficiency": compute / step}


# --- Self-test: every expected value below was worked out by hand (see the comments). ---


def self_test():
    checks = []

    def close(name, got, want, rel=1e-9):
        ok = math.isclose(got, want, rel_tol=rel, abs_tol=1e-15)
        checks.append((name, ok, f"got {got!r}, want {want!r}"))

    # ViT-L/16 MHA is timm's vit_large_patch16_224: 304,326,632 parameters. Per block:
    # weights 4 x 1024^2 + 2 x 1024 x 4096 = 12,582,912, biases 3072 + 1024 + 4096 + 1024,
    # LayerNorms 4096 -> 12,596,224; x 24 + conv 787,456 + cls 1024 + pos 201,728 + LN 2048
    # + head 1,025,000.
    close("ViT-L MHA parameters", vit_parameters(kv_heads=16), 304_326_632)
    # G = 4: K and V shrink to 1024 x 256 + 256 each: a block has 12,596,224 - 2 x 786,432
    # - 2 x 768 = 11,021,824 -> 266,541,032 (what `dgqa bench` reports for bench/vit_l_224).
    close("ViT-L G=4 parameters", vit_parameters(), 266_541_032)
    # Forward per image: blocks 2 x 11,010,048 x 197 x 24 + 4 x 197^2 x 1024 x 24, patch
    # embedding 2 x 786,432 x 196, head 2 x 1024 x 1000: 108,236,423,168; x 3 for training
    # (model/flops.cc gives 324.709269504 GFLOP).
    close("ViT-L G=4 training FLOPs", vit_training_flops(), 324_709_269_504)
    # One GPU: no communication, efficiency 1.
    close("ring N=1", ring_allreduce_time(1e9, 1, 1e11, 1e-6), 0.0)
    one = predict(1, grad_bytes=1e9, compute=0.03, bucket_bytes=25 * MIB, topology="ring",
                  per_node=8, bw_nvl=4.5e11, alpha_nvl=1e-6, bw_ib=5e10, alpha_ib=5e-6, batch=32)
    close("N=1 exposed", one["exposed"], 0.0)
    close("N=1 efficiency", one["efficiency"], 1.0)
    # Ring, N=4, 1 GB at 100 GB/s, alpha 1 us: 2 x 3/4 x 1e9 / 1e11 + 6 x 1e-6 = 15.006 ms.
    close("ring N=4", ring_allreduce_time(1e9, 4, 1e11, 1e-6), 0.015006)
    # Hierarchical, 2 nodes of 8, 800 MB, NVLink 400 GB/s / 1 us, IB 50 GB/s / 5 us:
    # reduce-scatter 7/8 x 8e8 / 4e11 = 1.75 ms + 7 us, across 2 x 1/2 x 1e8 / 5e10 = 2 ms
    # + 2 x 5 us, all-gather as the reduce-scatter: 5.5 ms + 24 us = 5.524 ms.
    close("hierarchical N=16", hierarchical_allreduce_time(8e8, 16, 8, 4e11, 1e-6, 5e10, 5e-6),
          0.005524)
    # One node: hierarchical is the NVLink ring, 2 x 7/8 x 8e8 / 4e11 + 14 us = 3.514 ms.
    close("hierarchical N=8 = ring",
          hierarchical_allreduce_time(8e8, 8, 8, 4e11, 1e-6, 5e10, 5e-6), 0.003514)
    # Flat ring over 16 GPUs runs at the IB rate: 2 x 15/16 x 8e8 / 5e10 + 30 x 5 us = 30.15 ms.
    close("flat ring N=16", flat_ring_time(8e8, 16, 8, 4e11, 1e-6, 5e10, 5e-6), 0.03015)
    # Overlap, backward 100 ms in 4 buckets (one every 25 ms):
    # 10 ms each: each ends before the next is ready; only the last is exposed: 10 ms.
    close("overlap compute-bound", exposed_communication(0.010, 4, 0.100), 0.010)
    # 40 ms each: starts 25, 65, 105, 145 -> ends at 185 ms, 85 ms after backward
    # (= 160 - (100 - 25)).
    close("overlap comm-bound", exposed_communication(0.040, 4, 0.100), 0.085)
    # One bucket: nothing hidden.
    close("overlap one bucket", exposed_communication(0.007, 1, 0.100), 0.007)
    # Communication exceeding backward, end to end: N=8 on NVLink 400 GB/s, alpha 0, 4e8
    # gradient bytes in 4 buckets of 1e8: m = 2 x 7/8 x 1e8 / 4e11 = 0.4375 ms, C = 1.75 ms.
    # Compute 1.5 ms -> backward 1 ms, 0.25 ms a bucket: E = 1.75 - (1 - 0.25) = 1 ms,
    # step 2.5 ms, efficiency 1.5 / 2.5 = 0.6 exactly.
    row = predict(8, grad_bytes=4e8, compute=0.0015, bucket_bytes=1e8, topology="hierarchical",
                  per_node=8, bw_nvl=4e11, alpha_nvl=0.0, bw_ib=5e10, alpha_ib=0.0, batch=4)
    close("comm > backward: all-reduce", row["comm"], 0.00175)
    close("comm > backward: exposed", row["exposed"], 0.001)
    close("comm > backward: efficiency", row["efficiency"], 0.6)
    close("comm > backward: images/s", row["images_per_sec"], 8 * 4 / 0.0025)
    # Same but compute 3 ms (backward 2 ms, 0.5 ms a bucket > m): only the last bucket shows:
    # step 3.4375 ms, efficiency 3 / 3.4375.
    row = predict(8, grad_bytes=4e8, compute=0.003, bucket_bytes=1e8, topology="hierarchical",
                  per_node=8, bw_nvl=4e11, alpha_nvl=0.0, bw_ib=5e10, alpha_ib=0.0, batch=4)
    close("comm < backward: efficiency", row["efficiency"], 3 / 3.4375)
    # The closed form against an event simulation of the bucket pipeline.
    for per_bucket, buckets, backward in [(0.003, 7, 0.05), (0.02, 5, 0.05), (0.01, 10, 0.1)]:
        end = 0.0
        for i in range(1, buckets + 1):
            end = max(end, i * backward / buckets) + per_bucket
        close(f"overlap simulation {per_bucket},{buckets},{backward}",
              exposed_communication(per_bucket, buckets, backward), end - backward)

    failed = [c for c in checks if not c[1]]
    for name, _, detail in failed:
        print(f"FAIL {name}: {detail}")
    print(f"scaling_model self-test: {len(checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


# --- Output. ---


def plot(path, rows, other_rows, title, topology):
    """PNG with gnuplot: images/s (and the linear ideal) and efficiency against GPUs."""
    names = {"hierarchical": "hierarchical all-reduce", "ring": "flat ring"}
    other = names["ring" if topology == "hierarchical" else "hierarchical"]
    topology = names[topology]
    with tempfile.NamedTemporaryFile("w", suffix=".dat", delete=False) as data:
        for row, alt in zip(rows, other_rows):
            ideal = row["images_per_sec"] / row["efficiency"]  # N x one GPU's images/s
            data.write(f"{row['gpus']} {row['images_per_sec']:.6g} {ideal:.6g} "
                       f"{row['efficiency']:.6g} {alt['images_per_sec']:.6g} "
                       f"{alt['efficiency']:.6g}\n")
    tics = ", ".join(f'"{r["gpus"]}" {r["gpus"]}' for r in rows)
    script = f"""
set terminal pngcairo noenhanced size 1200,500 font ",10"
set output "{path}"
set logscale x 2
set xtics ({tics})
set grid
set key top left
set xlabel "GPUs"
set multiplot layout 1,2 title "{title}"
set ylabel "images/s"
set logscale y 10
set format y "%.0f"
plot "{data.name}" using 1:3 with lines dt 2 lc rgb "gray" title "ideal (N x 1 GPU)", \\
     "{data.name}" using 1:2 with linespoints lw 2 pt 7 lc 1 title "{topology}", \\
     "{data.name}" using 1:5 with linespoints lw 1 pt 6 lc 2 title "{other}"
unset logscale y
set format y "%g"
set ylabel "efficiency"
set yrange [0:1.05]
set key bottom left
plot "{data.name}" using 1:4 with linespoints lw 2 pt 7 lc 1 title "{topology}", \\
     "{data.name}" using 1:6 with linespoints lw 1 pt 6 lc 2 title "{other}"
unset multiplot
"""
    try:
        subprocess.run(["gnuplot"], input=script, text=True, check=True)
    finally:
        os.unlink(data.name)


def gpu_list(text):
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants GPU counts separated by commas, not {text!r}")
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"wants positive GPU counts, not {text!r}")
    return values


def positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"wants a number, not {text!r}")
        if not value > 0:
            raise argparse.ArgumentTypeError(f"wants a positive number, not {text!r}")
        return value
    return parse


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="The model's formulas: this file's docstring (pydoc3 tools/scaling_model.py).")
    parser.add_argument("--self-test", action="store_true",
                        help="check the formulas on hand-computed cases and exit")
    parser.add_argument("--gpus", type=gpu_list, default=[8 << i for i in range(8)],
                        help="GPU counts, comma-separated (default 8,16,...,1024)")
    shape = parser.add_argument_group("model shape (default ViT-L/16 at 224, G = 4)")
    for name, value in [("image-size", 224), ("patch", 16), ("channels", 3), ("dim", 1024),
                        ("depth", 24), ("heads", 16), ("kv-heads", 4), ("mlp", 4096),
                        ("classes", 1000)]:
        shape.add_argument(f"--{name}", type=positive(int), default=value,
                           help=f"(default {value})")
    compute = parser.add_argument_group(
        "compute per GPU (one of --step-ms, --gpu-ips, or --mfu x --peak-tflops)")
    compute.add_argument("--batch-per-gpu", type=positive(int), default=32,
                         help="images per GPU per step (default 32)")
    compute.add_argument("--step-ms", type=positive(float),
                         help="forward + backward time of one GPU's batch, ms")
    compute.add_argument("--gpu-ips", type=positive(float),
                         help="training images/s of one GPU alone")
    compute.add_argument("--mfu", type=positive(float), default=0.4,
                         help="model FLOP utilisation (default 0.4)")
    compute.add_argument("--peak-tflops", type=positive(float), default=989.0,
                         help="peak FLOP/s of a GPU, TFLOP/s (default 989: H100 SXM bf16 dense)")
    network = parser.add_argument_group("communication")
    network.add_argument("--grad-dtype", choices=["fp32", "bf16"], default="fp32",
                         help="gradient all-reduce precision (default fp32: 4 bytes)")
    network.add_argument("--bucket-mb", type=positive(float), default=25.0,
                         help="gradient bucket, MiB (default 25, PyTorch DDP's; dgqa's CPU "
                              "default dist.bucket_mb is 1)")
    network.add_argument("--topology", choices=["hierarchical", "ring"], default="hierarchical",
                         help="all-reduce: hierarchical (default) or one flat ring")
    network.add_argument("--gpus-per-node", type=positive(int), default=8,
                         help="GPUs sharing NVLink (default 8)")
    network.add_argument("--nvlink-gbytes", type=positive(float), default=450.0,
                         help="NVLink bandwidth per GPU and direction, GB/s (default 450: "
                              "NVLink 4, H100 SXM)")
    network.add_argument("--ib-gbits", type=positive(float), default=400.0,
                         help="InfiniBand per GPU (one NIC each), Gbit/s (default 400: NDR)")
    network.add_argument("--alpha-nvlink-us", type=float, default=1.0,
                         help="latency of a ring step inside a node, us (default 1)")
    network.add_argument("--alpha-ib-us", type=float, default=5.0,
                         help="latency of a ring step between nodes, us (default 5)")
    output = parser.add_argument_group("output")
    output.add_argument("--csv", help="also write the table to this CSV file")
    output.add_argument("--png", help="also plot images/s and efficiency to this PNG (gnuplot)")
    args = parser.parse_args(argv)

    if args.self_test:
        return self_test()
    if args.png and shutil.which("gnuplot") is None:  # before any output, not after it
        parser.error("--png needs gnuplot: launch/install_deps.sh --with-bench "
                     "(Debian package gnuplot-nox)")
    if args.step_ms and args.gpu_ips:
        parser.error("give --step-ms or --gpu-ips, not both")
    if args.alpha_nvlink_us < 0 or args.alpha_ib_us < 0:
        parser.error("latencies cannot be negative")
    if args.mfu > 1:
        parser.error(f"--mfu is a fraction of the peak (0 < MFU <= 1), not {args.mfu}")
    shape = dict(image=args.image_size, patch=args.patch, channels=args.channels, dim=args.dim,
                 depth=args.depth, heads=args.heads, kv_heads=args.kv_heads, mlp=args.mlp,
                 classes=args.classes)
    if args.dim % args.heads or args.heads % args.kv_heads or args.image_size % args.patch:
        parser.error("impossible shape: dim % heads, heads % kv-heads and image-size % patch "
                     "must be 0")
    for n in args.gpus:
        if n > args.gpus_per_node and n % args.gpus_per_node:
            parser.error(f"--gpus: {n} is not a whole number of {args.gpus_per_node}-GPU nodes")

    params = vit_parameters(**shape)
    flops = vit_training_flops(**shape)
    grad_bytes = params * (4 if args.grad_dtype == "fp32" else 2)
    if args.step_ms:
        compute_s, source = args.step_ms / 1e3, f"--step-ms {args.step_ms:g}"
    elif args.gpu_ips:
        compute_s = args.batch_per_gpu / args.gpu_ips
        source = f"--gpu-ips {args.gpu_ips:g}"
    else:
        compute_s = args.batch_per_gpu * flops / (args.mfu * args.peak_tflops * 1e12)
        source = f"MFU {args.mfu:g} of {args.peak_tflops:g} TFLOP/s"
    settings = dict(grad_bytes=grad_bytes, compute=compute_s, bucket_bytes=args.bucket_mb * MIB,
                    per_node=args.gpus_per_node, bw_nvl=args.nvlink_gbytes * 1e9,
                    alpha_nvl=args.alpha_nvlink_us * 1e-6, bw_ib=args.ib_gbits * 1e9 / 8,
                    alpha_ib=args.alpha_ib_us * 1e-6, batch=args.batch_per_gpu)
    rows = [predict(n, topology=args.topology, **settings) for n in args.gpus]

    model = (f"ViT {args.image_size}/{args.patch} D {args.dim} depth {args.depth} H {args.heads} "
             f"G {args.kv_heads}: {params:,} parameters, {flops / 1e9:.1f} GFLOP/image (training)")
    print(model)
    print(f"per GPU: batch {args.batch_per_gpu}, compute {compute_s * 1e3:.2f} ms ({source}; "
          f"backward {2 / 3 * compute_s * 1e3:.2f} ms), 1 GPU {args.batch_per_gpu / compute_s:.1f} "
          f"images/s")
    print(f"gradients: {grad_bytes / 1e9:.3f} GB {args.grad_dtype} in {rows[0]['buckets']} "
          f"buckets of <= {args.bucket_mb:g} MiB; {args.topology} all-reduce, "
          f"{args.gpus_per_node} GPUs/node, NVLink {args.nvlink_gbytes:g} GB/s "
          f"(alpha {args.alpha_nvlink_us:g} us), IB {args.ib_gbits:g} Gbit/s "
          f"(alpha {args.alpha_ib_us:g} us)")
    header = f"{'GPUs':>6} {'nodes':>5} {'comm ms':>9} {'exposed ms':>10} {'step ms':>9} " \
             f"{'images/s':>11} {'efficiency':>10}"
    print(header)
    for r in rows:
        print(f"{r['gpus']:>6} {r['nodes']:>5} {r['comm'] * 1e3:>9.2f} {r['exposed'] * 1e3:>10.2f} "
              f"{r['step'] * 1e3:>9.2f} {r['images_per_sec']:>11.0f} {r['efficiency']:>10.3f}")

    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["gpus", "nodes", "buckets", "comm_ms", "exposed_ms", "compute_ms",
                             "step_ms", "images_per_sec", "efficiency"])
            for r in rows:
                writer.writerow([r["gpus"], r["nodes"], r["buckets"], f"{r['comm'] * 1e3:.4f}",
                                 f"{r['exposed'] * 1e3:.4f}", f"{compute_s * 1e3:.4f}",
                                 f"{r['step'] * 1e3:.4f}", f"{r['images_per_sec']:.1f}",
                                 f"{r['efficiency']:.5f}"])
        print(f"CSV: {args.csv}")
    if args.png:
        other = "ring" if args.topology == "hierarchical" else "hierarchical"
        other_rows = [predict(n, topology=other, **settings) for n in args.gpus]
        title = (f"{model}\\nbatch {args.batch_per_gpu}/GPU, {source}, {args.grad_dtype} "
                 f"gradients, {args.bucket_mb:g} MiB buckets, NVLink {args.nvlink_gbytes:g} GB/s, "
                 f"IB {args.ib_gbits:g} Gbit/s per GPU")
        plot(args.png, rows, other_rows, title, args.topology)
        print(f"Plot: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
