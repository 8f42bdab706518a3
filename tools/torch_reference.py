#!/usr/bin/python3
"""An independent PyTorch implementation of the dgqa ViT (docs/design.md §3), to cross-check
the C++ code: it loads a dgqa safetensors file (tensor names of docs/design.md §4), runs the
model in float64 in eval mode on already-normalised images and writes the logits.

  torch_reference.py --weights W.safetensors --images X.npy --scheme GQA --num-heads 4 \
      --num-kv-heads 2 --patch-size 4 [--seed 0] [--pgqa-eval-noise 1] --logits-out L.npy
  torch_reference.py --self-test

X.npy: float32 (N, C, S, S). L.npy: float32 (N, K). Embedding width, depth, class count and
image size come from the tensor shapes. Needs only numpy and torch (not timm or safetensors).
Training steps (loss options, AdamW, LR schedules) are in tools/torch_training.py, which runs
this model.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

from allocation_reference import (apportion, dgqa_scores, equal_split, kdgqa_allocation,
                                  next_cache, philox4x32_10, philox_uniforms)
from safetensors_numpy import read_safetensors

SCHEMES = ["MHA", "GQA", "KDGQA", "DGQA_DIFF", "DGQA_EMA", "PGQA"]
EVAL_STEP = 0xFFFFFFFF  # the Philox step word of PGQA's noise at evaluation (docs/design.md §3.4)


# ---- PGQA's noise (docs/design.md §3.4) ----

def pgqa_noise(seed, step, layer, group, rows, length):
    """The standardised noise matrix R (rows = H/G, length = P*d) of one layer and K/V group:
    element e = i*length + j of the stream (seed, step, layer, group)."""
    r = philox_uniforms(seed, step, layer, group, np.arange(rows * length)).reshape(rows, length)
    diagonal = np.arange(min(rows, length))
    r[diagonal, diagonal] = 0
    std = r.std(axis=1, ddof=1, keepdims=True)
    std[std == 0] = 1
    return (r - r.mean(axis=1, keepdims=True)) / std


def subtract_pgqa_noise(out, seed, step_word, layer, G):
    """out (B, H, P, d): each group's output o, viewed as (B, H/G, P*d) (head rows, each head's
    (P, d) flattened p-major), becomes o - (R * std(o) + mean(o)) per row (unbiased std)."""
    B, H, P, d = out.shape
    o = out.reshape(B, G, H // G, P * d)
    noise = np.stack([pgqa_noise(seed, step_word, layer, g, H // G, P * d) for g in range(G)])
    noise = torch.from_numpy(noise)
    o = o - (noise * o.std(-1, unbiased=True, keepdim=True) + o.mean(-1, keepdim=True))
    return o.reshape(B, H, P, d)


# ---- The model (docs/design.md §3) ----

def linear(x, w, name):
    return F.linear(x, w[name + ".weight"], w[name + ".bias"])


def layer_norm(x, w, name):
    return F.layer_norm(x, x.shape[-1:], w[name + ".weight"], w[name + ".bias"], eps=1e-6)


def key_norms(k):
    """§3.1: each image's ||k[b, :, g]||_F rounded to float32, summed over the batch in float32
    in image order; k is (B, G, P, d)."""
    per_image = k.detach().flatten(2).norm(dim=2).numpy().astype(np.float32)
    total = np.zeros(per_image.shape[1], dtype=np.float32)
    for norms in per_image:
        total = total + norms
    return total


def dgqa_allocation(w, prefix, k, args, step):
    """§3.3: the allocation a DGQA pass uses. In the training pass of a window step (`step` a
    multiple of --dgqa-window) the pass's key norms first update the layer's allocation and
    cache, held in w; evaluation (step None) uses the allocation as it is."""
    if step is not None and step % args.dgqa_window == 0:
        norms, cache = key_norms(k), w[prefix + "cache"].numpy()
        scores = dgqa_scores(args.scheme, norms, cache, args.dgqa_beta)
        w[prefix + "allocation"] = torch.from_numpy(apportion(scores, args.num_heads))
        w[prefix + "cache"] = torch.tensor(next_cache(norms, cache, args.dgqa_window),
                                           dtype=torch.float64)
    allocation = w[prefix + "allocation"].numpy()
    check(allocation.min() >= 0 and allocation.sum() == args.num_heads, f"bad {prefix}allocation")
    return allocation


def attention(x, w, layer, args, step=None):
    """One attention branch; `step` is the training step of the pass, None at evaluation."""
    B, P, D = x.shape
    H, G = args.num_heads, args.num_kv_heads
    d = D // H
    prefix = f"blocks.{layer}.attn."
    q = linear(x, w, prefix + "q").view(B, P, H, d).transpose(1, 2) * d**-0.5
    k = linear(x, w, prefix + "k").view(B, P, G, d).transpose(1, 2)
    v = linear(x, w, prefix + "v").view(B, P, G, d).transpose(1, 2)
    if args.scheme == "KDGQA":
        allocation = kdgqa_allocation(key_norms(k), H)
    elif args.scheme in ("DGQA_DIFF", "DGQA_EMA"):
        allocation = dgqa_allocation(w, prefix, k, args, step)
    else:  # MHA (G = H) and GQA, PGQA: equal contiguous groups
        allocation = equal_split(H, G)
    kv_head = torch.from_numpy(np.repeat(np.arange(G), allocation))  # first a[0] heads -> 0, ...
    probs = torch.softmax(q @ k[:, kv_head].transpose(-1, -2), dim=-1)
    out = probs @ v[:, kv_head]  # (B, H, P, d)
    if args.scheme == "PGQA" and (step is not None or args.pgqa_eval_noise):
        out = subtract_pgqa_noise(out, args.seed, EVAL_STEP if step is None else step, layer, G)
    return linear(out.transpose(1, 2).reshape(B, P, D), w, prefix + "proj")


def vit_logits(w, images, args, branch_scale=lambda layer, branch: 1.0, step=None):
    """The logits; branch_scale(layer, branch) multiplies the attention (branch 0) and MLP
    (branch 1) outputs of each block before their residual sums (drop path in training); `step`
    is the training step of the pass (PGQA's noise, DGQA's window), None at evaluation."""
    depth = sum(1 for name in w if name.startswith("blocks.") and name.endswith(".norm1.weight"))
    x = F.conv2d(images, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"],
                 stride=args.patch_size)
    x = x.flatten(2).transpose(1, 2)  # (B, N, D), patches in row-major order
    x = torch.cat([w["cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + w["pos_embed"]
    for i in range(depth):
        attention_out = attention(layer_norm(x, w, f"blocks.{i}.norm1"), w, i, args, step)
        x = x + branch_scale(i, 0) * attention_out
        hidden = F.gelu(linear(layer_norm(x, w, f"blocks.{i}.norm2"), w, f"blocks.{i}.mlp.fc1"))
        x = x + branch_scale(i, 1) * linear(hidden, w, f"blocks.{i}.mlp.fc2")
    return linear(layer_norm(x, w, "norm")[:, 0], w, "head")


def check(condition, message):
    if not condition:
        sys.exit("torch_reference.py: " + message)


def check_shapes(w, images, args):
    D = w["cls_token"].shape[-1]
    H, G, p = args.num_heads, args.num_kv_heads, args.patch_size
    check(images.ndim == 4 and images.shape[2] == images.shape[3], "images must be (N, C, S, S)")
    check(D % H == 0, f"embedding width {D} is not a multiple of {H} heads")
    check(images.shape[2] % p == 0, f"image size {images.shape[2]} is not a multiple of {p}")
    tokens = (images.shape[2] // p) ** 2 + 1
    check(tuple(w["pos_embed"].shape) == (1, tokens, D), f"pos_embed is not (1, {tokens}, {D})")
    check(tuple(w["patch_embed.proj.weight"].shape) == (D, images.shape[1], p, p),
          "patch_embed.proj.weight does not fit the images and patch size")
    check(tuple(w["blocks.0.attn.k.weight"].shape) == (G * (D // H), D),
          f"blocks.0.attn.k.weight is not ({G} * {D // H}, {D})")
    check(args.scheme != "MHA" or G == H, "MHA needs --num-kv-heads equal to --num-heads")
    check(args.scheme not in ("GQA", "PGQA") or H % G == 0, f"{H} heads do not split into {G} groups")


def self_test():
    """Philox's known answer (Salmon et al.) and the allocation test vectors of the repository."""
    words = [int(word) for word in philox4x32_10((0, 0, 0, 0), 0)]
    assert words == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8], [hex(x) for x in words]
    vectors = os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                           "allocation_vectors.json")
    with open(vectors) as f:
        cases = json.load(f)["cases"]
    for case in cases:
        if case["scheme"] == "KDGQA":
            got = kdgqa_allocation(case["norms"], case["heads"]).tolist()
        else:
            scores = dgqa_scores(case["scheme"], case["norms"], case["cache"], case["beta"])
            got = apportion(scores, case["heads"]).tolist()
            cache = next_cache(case["norms"], case["cache"], case["window"])
            assert cache == case["new_cache"], (case, cache)
        assert got == case["allocation"], (case, got)
    print(f"self-test passed (Philox known answer, {len(cases)} allocation vectors)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--self-test", action="store_true", help="check Philox and the allocations, exit")
    parser.add_argument("--weights", help="dgqa safetensors file")
    parser.add_argument("--images", help="float32 .npy (N, C, S, S), already normalised")
    parser.add_argument("--scheme", choices=SCHEMES)
    parser.add_argument("--num-heads", type=int)
    parser.add_argument("--num-kv-heads", type=int)
    parser.add_argument("--patch-size", type=int)
    parser.add_argument("--seed", type=int, default=0, help="the run's seed (PGQA noise)")
    parser.add_argument("--pgqa-eval-noise", type=int, choices=[0, 1], default=1)
    parser.add_argument("--logits-out", help="float32 .npy (N, K) to write")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    required = ["weights", "images", "scheme", "num_heads", "num_kv_heads", "patch_size",
                "logits_out"]
    missing = ["--" + name.replace("_", "-") for name in required if getattr(args, name) is None]
    if missing:
        parser.error("missing " + ", ".join(missing))

    arrays = read_safetensors(args.weights)
    w = {name: torch.from_numpy(array.astype(np.float64 if array.dtype.kind == "f" else np.int64))
         for name, array in arrays.items()}
    images = np.load(args.images)
    check_shapes(w, images, args)
    with torch.no_grad():
        logits = vit_logits(w, torch.from_numpy(images.astype(np.float64)), args)
    np.save(args.logits_out, logits.numpy().astype(np.float32))


if __name__ == "__main__":
    main()
