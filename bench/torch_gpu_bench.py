#!/usr/bin/env python3
"""The PyTorch 2 peer of `dgqa bench` on the GPU: the ViT of docs/design.md §3 (the model of
bench/torch_bench.py, imported from it) trained on a fixed synthetic batch with bf16 autocast,
scaled_dot_product_attention and a fused AdamW, optionally under torch.compile; for MHA also timm's
ViT (`--model timm`, built without weights) as a reference point. bench/compare_gpu.sh runs it
alternately with `dgqa bench`.

  torch_gpu_bench.py --shape-json '{"image_size": 224, ...}' --scheme GQA --batch 32 \\
      [--model ours|timm] [--compile] [--precision bf16|fp32] [--steps 20] [--warmup N] \\
      [--device cuda|cpu]

Prints one JSON line per run: images_per_sec, ms_per_step, scheme, model, compile (whether the
timed steps ran compiled), compile_requested, batch, precision, the attention path taken, the
device, PyTorch's peak allocated memory, and notes (features skipped and why).

--shape-json takes the "shape" object of `dgqa bench --json`, so both programs time one shape.
Attention: the query-to-K/V map of the allocation (docs/design.md §3) is applied by expanding
K and V with index_select before scaled_dot_product_attention; a uniform GQA allocation uses SDPA's
own enable_gqa (PyTorch >= 2.5) instead, and MHA needs no map. KDGQA computes its key norms and
allocation every step and DGQA at window steps, outside the compiled graph (the allocation is host
data); PGQA draws its noise. Numerics: PyTorch's random numbers and autocast's bf16 (matrix
products and attention in bf16, LayerNorm, softmax statistics and the loss in fp32), which is close
to, not the same as, dgqa's bf16 (bf16 operands, fp32 accumulation and results in the matrix
products, every other kernel fp32): this measures speed, not numerics. --precision fp32 turns
TF32 off, as dgqa's fp32 GEMMs do.

Exit codes: 0 success; 2 bad arguments or a PyTorch too old for the GPU path (2.0 or newer is
needed: scaled_dot_product_attention); 3 something missing on this machine (a GPU, timm).

--device cpu is a smoke test of the script itself on a tiny shape (the CPU peer with timings is
bench/torch_bench.py). There, what the installed PyTorch lacks is skipped with a note: PyTorch 1.13
(Debian's) has no scaled_dot_product_attention (the explicit softmax(q k^T) v of torch_bench.py
is used), no torch.compile and no fused AdamW.
"""
import argparse
import importlib
import json
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import torch_bench  # noqa: E402  (the model: one source of truth for the CPU and GPU peers)

TIMM_MODEL = "vit_large_patch16_224"  # timm's name for the shape of bench/vit_l_224.pbtxt


def version_tuple(text):
    """'2.11.0+cu130' -> (2, 11); '1.13.0a0' -> (1, 13)."""
    numbers = re.findall(r"\d+", text)[:2]
    return tuple(int(n) for n in numbers) + (0,) * (2 - len(numbers))


TORCH_VERSION = version_tuple(torch.__version__)
HAS_SDPA = hasattr(F, "scaled_dot_product_attention")  # PyTorch >= 2.0
HAS_ENABLE_GQA = TORCH_VERSION >= (2, 5)  # scaled_dot_product_attention(..., enable_gqa=True)


def compiler_disable(function):
    """Keeps function out of torch.compile's graphs (a graph break); a no-op without compile."""
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and hasattr(compiler, "disable"):  # PyTorch >= 2.1
        return compiler.disable(function)
    try:
        import torch._dynamo as dynamo  # PyTorch 2.0
    except ImportError:  # PyTorch 1.x: no torch.compile, nothing to keep out of it
        return function
    return dynamo.disable(function)


EXPLICIT = "explicit softmax(q k^T) v (no SDPA)"
SDPA = "sdpa"
SDPA_GQA = "sdpa enable_gqa"
SDPA_EXPANDED = "sdpa, K/V expanded by index_select"


class SdpaAttention(torch_bench.Attention):
    """torch_bench.Attention with attend() through scaled_dot_product_attention.

    The allocation is host data decided from the keys of this forward pass, so under torch.compile
    the allocation (the .tolist() and the Python apportionment, which would otherwise specialise the
    graph on every new value) and the K/V index built from it stay eager: graph breaks, the
    graph taking the index as an input. KDGQA's allocation may change at every step, so the graph
    never reads it (always the expanded path); DGQA's changes at window steps only, and a change
    recompiles."""

    _choose_allocation_eager = compiler_disable(torch_bench.Attention.choose_allocation)

    def choose_allocation(self, k, step):
        dgqa = self.scheme in ("DGQA_DIFF", "DGQA_EMA")
        if self.scheme == "KDGQA" or (dgqa and step % self.window == 0):
            self._choose_allocation_eager(k, step)

    @compiler_disable
    def kv_index_cached(self, device):
        """kv_index, built once per allocation: building it copies the map to the device, which
        waits for the GPU, and must not happen in every layer of every step."""
        cache = self.__dict__.setdefault("_kv_indices", {})
        key = (tuple(self.allocation), str(device))
        if key not in cache:
            cache[key] = self.kv_index(device)
        return cache[key]

    def attention_path(self):
        if not HAS_SDPA:
            return EXPLICIT
        if self.scheme == "KDGQA":
            return SDPA_EXPANDED
        if self.allocation == [1] * self.H:  # MHA: K/V head h for query head h
            return SDPA
        uniform = self.H % self.G == 0 and self.allocation == [self.H // self.G] * self.G
        if uniform and HAS_ENABLE_GQA:  # query head h -> K/V head h // (H / G), as SDPA repeats
            return SDPA_GQA
        return SDPA_EXPANDED

    def attend(self, q, k, v):
        path = self.attention_path()
        if path == EXPLICIT:  # a CPU smoke test on PyTorch 1.x: torch_bench.py's attention
            return super().attend(q, k, v)
        if path == SDPA:
            return F.scaled_dot_product_attention(q, k, v)
        if path == SDPA_GQA:
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
        kv_index = self.kv_index_cached(q.device)
        return F.scaled_dot_product_attention(q, k.index_select(1, kv_index),
                                              v.index_select(1, kv_index))


def fail(code, message):
    print(f"torch_gpu_bench.py: {message}", file=sys.stderr)
    sys.exit(code)


def build_model(args, shape, notes):
    """The model and a forward(images, step) for it."""
    if args.model == "timm":
        try:
            import timm
        except ImportError as error:
            fail(3, f"--model timm needs timm, which is not installed ({error})")
        model = timm.create_model(TIMM_MODEL, pretrained=False, img_size=shape["image_size"],
                                  num_classes=shape["num_classes"])
        for field, expected in (("embed_dim", model.embed_dim), ("depth", len(model.blocks)),
                                ("patch_size", model.patch_embed.patch_size[0]),
                                ("in_channels", model.patch_embed.proj.in_channels)):
            if shape[field] != expected:
                notes.append(f"timm {TIMM_MODEL} has {field} {expected}, the shape {shape[field]}")
        return model, lambda images, step: model(images)
    model = torch_bench.ViT(shape, args.scheme, attention=SdpaAttention)
    return model, model


def make_optimizer(model, device, notes):
    """AdamW as torch_bench.py's (lr 5e-4, weight decay 0.05), fused where PyTorch has it."""
    try:
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.05, fused=True)
        return optimizer, True
    except (TypeError, RuntimeError, ValueError) as error:  # 1.x: no fused; some devices neither
        notes.append(f"fused AdamW unavailable on {device} ({str(error).splitlines()[0]}): "
                     "the default implementation")
        return torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.05), False


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape-json", required=True,
                        help='the "shape" object of `dgqa bench --json`')
    parser.add_argument("--scheme", choices=torch_bench.SCHEMES, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--model", choices=["ours", "timm"], default="ours",
                        help=f"ours: docs/design.md §3; timm: {TIMM_MODEL}, no weights (MHA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=None,
                        help="untimed steps first (default 3, 5 with --compile)")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = 5 if args.compile else 3
    if args.steps < 1 or args.warmup < 0 or args.batch < 1:
        fail(2, "--steps and --batch must be >= 1, --warmup >= 0")
    if args.model == "timm" and args.scheme != "MHA":
        fail(2, f"--model timm is timm's MHA ViT: use it with --scheme MHA, not {args.scheme}")
    try:
        shape = json.loads(args.shape_json)
        missing = [f for f in ("image_size", "patch_size", "in_channels", "num_classes",
                               "embed_dim", "depth", "num_heads", "num_kv_heads",
                               "dgqa_window", "dgqa_beta") if f not in shape]
    except (json.JSONDecodeError, TypeError) as error:
        fail(2, f"--shape-json is not a JSON object: {error}")
    if missing:
        fail(2, f"--shape-json lacks {', '.join(missing)}")

    on_gpu = args.device.startswith("cuda")
    if on_gpu:
        if not HAS_SDPA:
            fail(2, f"PyTorch {torch.__version__} is too old for the GPU peer: it needs 2.0 or "
                    "newer (scaled_dot_product_attention)")
        if not torch.cuda.is_available():
            fail(3, f"no GPU visible to PyTorch {torch.__version__} (CUDA build: "
                    f"{torch.version.cuda or 'none'})")
    elif args.device != "cpu":
        fail(2, f"--device {args.device}: expected cuda, cuda:N or cpu")
    device = torch.device(args.device)
    notes = []
    if not HAS_SDPA:
        notes.append(f"PyTorch {torch.__version__} has no scaled_dot_product_attention: the "
                     "explicit softmax(q k^T) v of torch_bench.py")
    if on_gpu and args.precision == "fp32":
        # dgqa's fp32 GEMMs do not use TF32; neither shall PyTorch's (nor cuDNN's convolution).
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if on_gpu:
        torch.backends.cudnn.benchmark = True  # the patch embedding: fixed shapes

    torch.manual_seed(0)
    model, forward = build_model(args, shape, notes)
    model.to(device)
    optimizer, fused = make_optimizer(model, device, notes)
    autocast = args.precision == "bf16"
    if autocast and not hasattr(torch, "autocast"):
        fail(2, f"PyTorch {torch.__version__} has no torch.autocast: use --precision fp32")
    compiled = False
    run_forward = forward
    if args.compile:
        if hasattr(torch, "compile"):
            dynamo_config = importlib.import_module("torch._dynamo").config
            for limit in ("recompile_limit", "cache_size_limit"):  # renamed in 2.6
                if hasattr(dynamo_config, limit):
                    setattr(dynamo_config, limit, max(getattr(dynamo_config, limit), 64))
            compiled_model = torch.compile(model)
            if args.model == "timm":
                run_forward = lambda images, step: compiled_model(images)  # noqa: E731
            else:
                run_forward = compiled_model
            compiled = True
        else:
            notes.append(f"PyTorch {torch.__version__} has no torch.compile: eager")

    images = torch.randn(args.batch, shape["in_channels"], shape["image_size"],
                         shape["image_size"], device=device)
    labels = torch.randint(0, shape["num_classes"], (args.batch,), device=device)

    def synchronize():
        if on_gpu:
            torch.cuda.synchronize(device)

    def train_step(step):
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = F.cross_entropy(run_forward(images, step), labels)
        loss.backward()
        optimizer.step()

    model.train()
    if compiled:
        # torch.compile compiles lazily, at the first call: a failure shows here, and the run
        # goes on eagerly with the reason printed.
        try:
            train_step(0)
            synchronize()
        except Exception as error:  # noqa: BLE001 (any compiler failure)
            reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            print(f"torch_gpu_bench.py: torch.compile failed, running eagerly: "
                  f"{type(error).__name__}: {reason}", file=sys.stderr)
            notes.append(f"torch.compile failed ({type(error).__name__}: {reason}): eager")
            compiled, run_forward = False, forward
    # With --compile, step 0 ran above (compiled or not): the warm-up goes on from step 1.
    first = 1 if args.compile and hasattr(torch, "compile") and args.warmup > 0 else 0
    if on_gpu:
        torch.cuda.reset_peak_memory_stats(device)
    synchronize()
    start = time.perf_counter()
    for step in range(first, args.warmup + args.steps):
        if step == args.warmup:
            synchronize()
            start = time.perf_counter()
        train_step(step)
    synchronize()
    seconds = time.perf_counter() - start
    report = {
        "images_per_sec": args.batch * args.steps / seconds,
        "ms_per_step": 1e3 * seconds / args.steps,
        "scheme": args.scheme,
        "model": "dgqa-peer" if args.model == "ours" else f"timm:{TIMM_MODEL}",
        "compile": compiled,
        "compile_requested": args.compile,
        "batch": args.batch,
        "steps": args.steps,
        "warmup": args.warmup,
        "precision": args.precision,
        "fused_adamw": fused,
        # The attention path of each layer at the end of the run (the allocation decides it).
        "attention": sorted({m.attention_path() for m in model.modules()
                             if isinstance(m, SdpaAttention)}) if args.model == "ours" else
                     ["timm"],
        "device": torch.cuda.get_device_name(device) if on_gpu else "cpu",
        "torch": torch.__version__,
        "notes": notes,
    }
    if on_gpu:
        report["max_memory_allocated_bytes"] = torch.cuda.max_memory_allocated(device)
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
