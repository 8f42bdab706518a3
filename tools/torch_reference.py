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

from safetensors_numpy import read_safetensors

SCHEMES = ["MHA", "GQA", "KDGQA", "DGQA_DIFF", "DGQA_EMA", "PGQA"]
EVAL_STEP = 0xFFFFFFFF  # the Philox step word of PGQA's noise at evaluation (docs/design.md §3.4)


# ---- Philox4x32-10 and PGQA's noise (docs/design.md §3.4) ----

def philox4x32_10(counter, key):
    """Philox4x32-10 of the four counter words (numpy arrays of 32-bit values, held in uint64
    so that the 32x32-bit products are exact) under a 64-bit key; returns the four output words."""
    mask, shift = np.uint64(0xFFFFFFFF), np.uint64(32)
    c0, c1, c2, c3 = (np.asarray(word, dtype=np.uint64) for word in counter)
    k0, k1 = np.uint64(key & 0xFFFFFFFF), np.uint64(key >> 32)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        c0, c1, c2, c3 = (p1 >> shift) ^ c1 ^ k0, p1 & mask, (p0 >> shift) ^ c3 ^ k1, p0 & mask
        k0 = (k0 + np.uint64(0x9E3779B9)) & mask
        k1 = (k1 + np.uint64(0xBB67AE85)) & mask
    return c0, c1, c2, c3


def philox_uniforms(key, c1, c2, c3, index):
    """Elements `index` (a 1-D array) of the uniform stream (key, c1, c2, c3): element e is word
    e % 4 of Philox(counter (e // 4, c1, c2, c3), key), made uniform in [0, 1) from its top 24
    bits."""
    index = np.asarray(index, dtype=np.uint64)
    words = np.stack(philox4x32_10((index // np.uint64(4), c1, c2, c3), key))
    word = words[(index % np.uint64(4)).astype(np.intp), np.arange(index.size)]
    return (word >> np.uint64(8)).astype(np.float64) / 2.0**24


def pgqa_noise(seed, step, layer, group, rows, length):
    """The standardised noise matrix R (rows = H/G, length = P*d) of one layer and K/V group:
    element e = i*length + j of the stream (seed, step, layer, group)."""
    r = philox_uniforms(seed, step, layer, group, np.arange(rows * length)).reshape(rows, length)
    diagonal = np.arange(min(rows, length))
    r[diagonal, diagonal] = 0
    std = r.std(axis=1, ddof=1, keepdims=True)
    std[std == 0] = 1
    return (r - r.mean(axis=1, keepdims=True)) / std


def subtract_pgqa_noise(out, seed, layer, G):
    """out (B, H, P, d): each group's output o, viewed as (B, H/G, P*d) (head rows, each head's
    (P, d) flattened p-major), becomes o - (R * std(o) + mean(o)) per row (unbiased std)."""
    B, H, P, d = out.shape
    o = out.reshape(B, G, H // G, P * d)
    noise = np.stack([pgqa_noise(seed, EVAL_STEP, layer, g, H // G, P * d) for g in range(G)])
    noise = torch.from_numpy(noise)
    o = o - (noise * o.std(-1, unbiased=True, keepdim=True) + o.mean(-1, keepdim=True))
    return o.reshape(B, H, P, d)


# ---- Query-head allocation (docs/design.md §3.2) ----

def equal_split(H, G):
    return np.array([H // G + (1 if g < H % G else 0) for g in range(G)], dtype=np.int64)


def kdgqa_allocation(norms, H):
    """Quotas in float32 from min-max normalised key norms, rounded half to even (as numpy
    rounds), then one head at a time off the largest / onto the smallest (first on ties)."""
    n = np.asarray(norms, dtype=np.float32)
    if n.max() == n.min():
        return equal_split(H, n.size)
    m = (n - n.min()) / (n.max() - n.min())
    total = np.float32(0)
    for value in m:  # summed in index order, as the C++ code does
        total = np.float32(total + value)
    a = np.round(m / total * np.float32(H)).astype(np.int64)
    while a.sum() > H:
        a[np.argmax(a)] -= 1
    while a.sum() < H:
        a[np.argmin(a)] += 1
    return a


# ---- The model (docs/design.md §3) ----

def linear(x, w, name):
    return F.linear(x, w[name + ".weight"], w[name + ".bias"])


def layer_norm(x, w, name):
    return F.layer_norm(x, x.shape[-1:], w[name + ".weight"], w[name + ".bias"], eps=1e-6)


def attention(x, w, layer, args):
    B, P, D = x.shape
    H, G = args.num_heads, args.num_kv_heads
    d = D // H
    prefix = f"blocks.{layer}.attn."
    q = linear(x, w, prefix + "q").view(B, P, H, d).transpose(1, 2) * d**-0.5
    k = linear(x, w, prefix + "k").view(B, P, G, d).transpose(1, 2)
    v = linear(x, w, prefix + "v").view(B, P, G, d).transpose(1, 2)
    if args.scheme == "KDGQA":
        key_norms = k.flatten(2).norm(dim=2).sum(dim=0)  # sum over the batch of ||k[b, g]||_F
        allocation = kdgqa_allocation(key_norms.numpy().astype(np.float32), H)
    elif args.scheme in ("DGQA_DIFF", "DGQA_EMA"):
        allocation = w[prefix + "allocation"].numpy()  # frozen at evaluation
        check(allocation.min() >= 0 and allocation.sum() == H, f"bad {prefix}allocation")
    else:  # MHA (G = H) and GQA, PGQA: equal contiguous groups
        allocation = equal_split(H, G)
    kv_head = torch.from_numpy(np.repeat(np.arange(G), allocation))  # first a[0] heads -> 0, ...
    probs = torch.softmax(q @ k[:, kv_head].transpose(-1, -2), dim=-1)
    out = probs @ v[:, kv_head]  # (B, H, P, d)
    if args.scheme == "PGQA" and args.pgqa_eval_noise:
        out = subtract_pgqa_noise(out, args.seed, layer, G)
    return linear(out.transpose(1, 2).reshape(B, P, D), w, prefix + "proj")


def vit_logits(w, images, args, branch_scale=lambda layer, branch: 1.0):
    """The logits; branch_scale(layer, branch) multiplies the attention (branch 0) and MLP
    (branch 1) outputs of each block before their residual sums (drop path in training)."""
    depth = sum(1 for name in w if name.startswith("blocks.") and name.endswith(".norm1.weight"))
    x = F.conv2d(images, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"],
                 stride=args.patch_size)
    x = x.flatten(2).transpose(1, 2)  # (B, N, D), patches in row-major order
    x = torch.cat([w["cls_token"].expand(x.shape[0], -1, -1), x], dim=1) + w["pos_embed"]
    for i in range(depth):
        x = x + branch_scale(i, 0) * attention(layer_norm(x, w, f"blocks.{i}.norm1"), w, i, args)
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
    """Philox's known answer (Salmon et al.) and the KDGQA test vectors of the repository."""
    words = [int(word) for word in philox4x32_10((0, 0, 0, 0), 0)]
    assert words == [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8], [hex(x) for x in words]
    vectors = os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                           "allocation_vectors.json")
    with open(vectors) as f:
        cases = [c for c in json.load(f)["cases"] if c["scheme"] == "KDGQA"]
    for case in cases:
        got = kdgqa_allocation(case["norms"], case["heads"]).tolist()
        assert got == case["allocation"], (case, got)
    print(f"self-test passed (Philox known answer, {len(cases)} KDGQA vectors)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--self-test", action="store_true", help="check Philox and KDGQA, exit")
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
