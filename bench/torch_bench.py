#!/usr/bin/python3
"""The PyTorch peer of `dgqa bench`: the same ViT (docs/design.md §3) written in plain PyTorch,
trained in fp32 eager mode on a fixed synthetic batch (forward, backward, torch.optim.AdamW),
timed the same way. bench/compare_torch.sh runs the two alternately.

  torch_bench.py --shape-json '{"image_size": 28, ...}' --scheme GQA --batch 128 \
      [--threads 2] [--steps 10] [--warmup 2] [--json]

--shape-json takes the "shape" object of `dgqa bench --json`, so both programs time one shape.
Each scheme does the work its definition asks for (key norms and an allocation for KDGQA every
step and for DGQA at window steps, the standardised noise for PGQA); the random numbers are
PyTorch's, not dgqa's Philox stream: this program measures speed, not numerics (for those see
tools/torch_reference.py).
"""
import argparse
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SCHEMES = ["MHA", "GQA", "KDGQA", "DGQA_DIFF", "DGQA_EMA", "PGQA"]


def equal_split(H, G):
    return [H // G + (1 if g < H % G else 0) for g in range(G)]


def apportion(weights, H):
    """Rounded shares of H in proportion to weights, fixed up to sum to H (docs/design.md §3.2/3.3)."""
    total = sum(weights)
    if total <= 0:
        return equal_split(H, len(weights))
    quotas = [w / total * H for w in weights]
    a = [round(q) for q in quotas]  # Python rounds half to even
    while sum(a) > H:
        a[max(range(len(a)), key=lambda i: (a[i] - quotas[i]) if a[i] > 0 else -math.inf)] -= 1
    while sum(a) < H:
        a[max(range(len(a)), key=lambda i: quotas[i] - a[i])] += 1
    return a


class Attention(nn.Module):
    def __init__(self, D, H, G, scheme, window, beta):
        super().__init__()
        self.H, self.G, self.d, self.scheme = H, G, D // H, scheme
        self.window, self.beta = window, beta
        self.q = nn.Linear(D, D)
        self.k = nn.Linear(D, G * self.d)
        self.v = nn.Linear(D, G * self.d)
        self.proj = nn.Linear(D, D)
        self.allocation = equal_split(H, G)
        self.register_buffer("cache", torch.zeros(G), persistent=False)  # moves with .to(device)

    def choose_allocation(self, k, step):
        """k (B, G, P, d). KDGQA every step, DGQA at window steps; the others keep theirs."""
        dgqa = self.scheme in ("DGQA_DIFF", "DGQA_EMA")
        if self.scheme != "KDGQA" and not (dgqa and step % self.window == 0):
            return
        # Frobenius per (b, g), summed over b, in fp32 (k may be bf16 under autocast).
        norms = torch.linalg.matrix_norm(k.detach().float()).sum(0)
        if self.scheme == "KDGQA":
            low, high = norms.min(), norms.max()
            scaled = ((norms - low) / (high - low)).tolist() if high > low else []
            self.allocation = apportion(scaled, self.H) if scaled else equal_split(self.H, self.G)
            return
        if self.scheme == "DGQA_DIFF":
            r = (self.cache - norms).abs()
        else:
            r = self.beta * norms + (1 - self.beta) * self.cache
        self.allocation = apportion(r.tolist(), self.H)
        self.cache = (self.cache + norms) / self.window

    def pgqa_noise(self, o):
        """o (B, H, P, d) -> o minus standardised noise rescaled to each head's mean and std."""
        B, H, P, d = o.shape
        grouped = o.reshape(B, self.G, H // self.G, P * d)
        r = torch.rand(self.G, H // self.G, P * d, device=o.device)
        rows = torch.arange(min(H // self.G, P * d), device=o.device)
        r[:, rows, rows] = 0
        std = r.std(-1, keepdim=True)
        r = (r - r.mean(-1, keepdim=True)) / torch.where(std == 0, torch.ones_like(std), std)
        grouped = grouped - (r * grouped.std(-1, keepdim=True) + grouped.mean(-1, keepdim=True))
        return grouped.reshape(B, H, P, d)

    def kv_index(self, device):
        """The K/V head of each query head (docs/design.md §3) as a tensor on device."""
        return torch.repeat_interleave(torch.arange(self.G, device=device),
                                       torch.tensor(self.allocation, device=device))

    def attend(self, q, k, v):
        """q (B, H, P, d), k and v (B, G, P, d) -> softmax(q k_kv(h)^T / sqrt(d)) v_kv(h) per head.
        bench/torch_gpu_bench.py overrides this with scaled_dot_product_attention."""
        kv_index = self.kv_index(q.device)
        k, v = k.index_select(1, kv_index), v.index_select(1, kv_index)
        scores = (q * self.d ** -0.5) @ k.transpose(-2, -1)
        return scores.softmax(-1) @ v

    def forward(self, x, step):
        B, P, D = x.shape
        q = self.q(x).view(B, P, self.H, self.d).transpose(1, 2)
        k = self.k(x).view(B, P, self.G, self.d).transpose(1, 2)
        v = self.v(x).view(B, P, self.G, self.d).transpose(1, 2)
        self.choose_allocation(k, step)
        o = self.attend(q, k, v)
        if self.scheme == "PGQA":
            o = self.pgqa_noise(o)
        return self.proj(o.transpose(1, 2).reshape(B, P, D))


class Block(nn.Module):
    def __init__(self, D, H, G, scheme, window, beta, attention=Attention):
        super().__init__()
        self.norm1 = nn.LayerNorm(D, eps=1e-6)
        self.attn = attention(D, H, G, scheme, window, beta)
        self.norm2 = nn.LayerNorm(D, eps=1e-6)
        self.fc1 = nn.Linear(D, 4 * D)
        self.fc2 = nn.Linear(4 * D, D)

    def forward(self, x, step):
        x = x + self.attn(self.norm1(x), step)
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))  # exact erf GELU


class ViT(nn.Module):
    """s: the "shape" object of `dgqa bench --json`; attention: the Attention class (a subclass
    may compute attend() another way, as bench/torch_gpu_bench.py does)."""

    def __init__(self, s, scheme, attention=Attention):
        super().__init__()
        D, p = s["embed_dim"], s["patch_size"]
        G = s["num_heads"] if scheme == "MHA" else s["num_kv_heads"]
        tokens = (s["image_size"] // p) ** 2 + 1
        self.patch_embed = nn.Conv2d(s["in_channels"], D, kernel_size=p, stride=p)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))
        self.pos_embed = nn.Parameter(torch.randn(1, tokens, D) * 0.02)
        self.blocks = nn.ModuleList(
            Block(D, s["num_heads"], G, scheme, s["dgqa_window"], s["dgqa_beta"], attention)
            for _ in range(s["depth"]))
        self.norm = nn.LayerNorm(D, eps=1e-6)
        self.head = nn.Linear(D, s["num_classes"])

    def forward(self, images, step):
        x = self.patch_embed(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x, step)
        return self.head(self.norm(x[:, 0]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape-json", required=True)
    parser.add_argument("--scheme", choices=SCHEMES, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0 or args.batch < 1 or args.threads < 1:
        sys.exit("torch_bench.py: --steps, --batch and --threads must be >= 1, --warmup >= 0")
    try:
        shape = json.loads(args.shape_json)
    except json.JSONDecodeError as error:
        sys.exit(f"torch_bench.py: --shape-json is not JSON: {error}")

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ViT(shape, args.scheme)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.05)
    images = torch.randn(args.batch, shape["in_channels"], shape["image_size"], shape["image_size"])
    labels = torch.randint(0, shape["num_classes"], (args.batch,))

    start = time.perf_counter()
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(images, step), labels)
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    report = {"images_per_sec": args.batch * args.steps / seconds,
              "ms_per_step": 1e3 * seconds / args.steps, "scheme": args.scheme,
              "threads": args.threads, "torch": torch.__version__}
    if args.json:
        print(json.dumps(report))
    else:
        print(f"PyTorch {torch.__version__} {args.scheme}: {report['images_per_sec']:.2f} "
              f"images/s, {report['ms_per_step']:.1f} ms per step")


if __name__ == "__main__":
    main()
