#!/usr/bin/python3
"""Training mode of the PyTorch reference (tools/torch_reference.py): runs N training steps of
the dgqa ViT in float64 from a dgqa safetensors file, as docs/design.md §3.6 specifies them
with torch's own pieces: F.cross_entropy (label smoothing), torch.optim.AdamW with one
parameter group per tensor (timm's layer-wise LR decay and no-weight-decay rule) and
torch.optim.lr_scheduler for the learning rate, timm's DropPath with the masks drawn as
dgqa draws them (§3.6, here in numpy), timm's ModelEmaV3 weight average (torch.lerp), and
timm's Mixup/CutMix (§3.6: the batch, pair and elem modes, rand_bbox and the lam correction,
mixup_target with label smoothing, the soft-target cross-entropy) re-implemented here on the
random draws dgqa reports (--mixup-draws). Every scheme trains as §3 specifies it: KDGQA
allocates from each pass's key norms, DGQA updates its allocation and cache at window steps
(the global step counter, the deterministic rounding correction), PGQA subtracts the noise of
the step. Each step runs on all the given images (one full batch, one epoch per step): the
examples' places in the batch, which key the drop-path masks and pair the mixed images, come
from the epoch's shuffle (§5.5). Writes the final weights, and with --ema-out the average.

  torch_training.py --weights W.safetensors --images X.npy --labels Y.npy --scheme GQA \
      --num-heads 4 --num-kv-heads 2 --patch-size 4 --steps 2 [--lr 1e-3 ...] \
      --weights-out OUT.safetensors

X.npy: float32 (N, C, S, S), already normalised; Y.npy: integer (N). OUT holds the trained
parameters as F32 and, for DGQA, each layer's final allocation as I64. Mixup: D.npy is
float32 (steps, draws, 10), one row per draw (one for the batch, per pair or per image): mixed,
cutmix, beta, lam, cy, cx, y0, y1, x0, x1 (data/mixup.h); the box and lam are recomputed from
beta and the centre (or, with --cutmix-minmax, from the drawn box) and must agree with dgqa's.
"""
import argparse
import math

import numpy as np
import torch
import torch.nn.functional as F

from safetensors_numpy import read_safetensors, write_safetensors
from allocation_reference import philox4x32_10, philox_uniforms
from torch_reference import SCHEMES, check, check_shapes, vit_logits

SCHEDULES = ["CONSTANT", "COSINE", "LINEAR", "STEP", "MULTI_STEP", "COSINE_RESTARTS"]
SHUFFLE_TAG = 0x53485546  # the shuffle stream's counter word c3 (docs/design.md §5.5)
DROP_PATH_LAYER_TAG = 0x40000000  # drop path's counter word c2 is this | layer (§3.6)


def cosine_cycles(lr, min_lr, cycle, mul, decay, limit):
    """timm's CosineLRScheduler after its warm-up prefix, as a function of the step s: cycle i
    lasts cycle * mul**i steps and runs a cosine from lr * decay**i down to min_lr; cycles from
    number `limit` on (0 = none) stay at min_lr."""
    def rate(s):
        i, start, length = 0, 0, cycle
        while s >= start + length:  # walk the cycles (timm solves for i with a logarithm)
            i, start, length = i + 1, start + length, length * mul
        if limit and i >= limit:
            return min_lr
        peak = lr * decay**i
        return min_lr + 0.5 * (peak - min_lr) * (1 + math.cos(math.pi * (s - start) / length))
    return rate


def lr_sequence(lr, total, warmup=0, kind="COSINE", min_lr=0.0, warmup_start_factor=None,
                step_size=1, gamma=0.1, milestones=(), cycle=(1, 1.0, 1.0, 0)):
    """The learning rate of steps 0..total-1, read from torch's schedulers stepped once per
    optimizer step on a dummy optimizer: the warm-up (LinearLR from warmup_start_factor, or
    (t+1)/warmup without it), then the decay scheduler started at the warm-up's end, as
    SequentialLR chains them. COSINE_RESTARTS (no torch scheduler has timm's cycles) is a
    LambdaLR of cosine_cycles with cycle = (steps, mul, decay, limit)."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = torch.optim.lr_scheduler
    rates = []

    def run(scheduler, steps):
        for _ in range(steps):
            rates.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()

    warmup = min(warmup, total)
    if warmup > 0:
        if warmup_start_factor is None:
            run(sched.LambdaLR(optimizer, lambda t: (t + 1) / warmup), warmup)
        else:
            run(sched.LinearLR(optimizer, warmup_start_factor, 1.0, total_iters=warmup), warmup)
    optimizer.param_groups[0]["lr"] = lr  # the decay starts from the peak rate
    decay_steps = total - warmup
    if kind == "CONSTANT" or decay_steps <= 0:
        decay = sched.LambdaLR(optimizer, lambda t: 1.0)
    elif kind == "COSINE":
        decay = sched.CosineAnnealingLR(optimizer, T_max=decay_steps, eta_min=min_lr)
    elif kind == "LINEAR":
        decay = sched.LinearLR(optimizer, 1.0, min_lr / lr, total_iters=decay_steps)
    elif kind == "STEP":
        decay = sched.StepLR(optimizer, step_size, gamma)
    elif kind == "MULTI_STEP":
        decay = sched.MultiStepLR(optimizer, list(milestones), gamma)
    else:
        rate = cosine_cycles(lr, min_lr, *cycle)
        decay = sched.LambdaLR(optimizer, lambda s: rate(s) / lr)
    run(decay, decay_steps)
    return rates


def epoch_order(n, seed, epoch):
    """The permutation of n training examples in an epoch: a Fisher-Yates shuffle on the
    Philox words of the stream (epoch, 0, SHUFFLE_TAG) under the seed."""
    draws = np.arange(max(n - 1, 0), dtype=np.uint64)
    words = np.stack(philox4x32_10((draws // np.uint64(4), epoch, 0, SHUFFLE_TAG), seed))
    words = words[(draws % np.uint64(4)).astype(np.intp), np.arange(draws.size)]
    order = list(range(n))
    for k, i in enumerate(range(n - 1, 0, -1)):
        j = (int(words[k]) * (i + 1)) >> 32  # uniform in [0, i] by multiply-shift
        order[i], order[j] = order[j], order[i]
    return order


def drop_path(rate, depth, seed, step, n):
    """timm's DropPath for step `step` of a run whose every step is one epoch of n examples:
    returns branch_scale(layer, branch) for vit_logits, each example's factor 0 or 1 / keep,
    keep = 1 - rate * layer / (depth - 1) (timm's torch.linspace(0, rate, depth)). The example
    at place j of the step's batch is kept when U(seed, step, DROP_PATH_LAYER_TAG | layer,
    branch, j) < keep."""
    if rate == 0:
        return lambda layer, branch: 1.0
    place = np.empty(n, dtype=np.uint64)
    place[epoch_order(n, seed, step)] = np.arange(n, dtype=np.uint64)

    def branch_scale(layer, branch):
        keep = 1 - rate * layer / max(depth - 1, 1)
        u = philox_uniforms(seed, step, DROP_PATH_LAYER_TAG | layer, branch, place)
        return torch.from_numpy((u < keep) / keep).view(n, 1, 1)
    return branch_scale


def cutmix_box(draw, size, minmax):
    """timm's CutMix box of a draw and the corrected lam (1 - box area / image area): a square
    of side int(size * sqrt(1 - beta)) rounded down to even, centred at (cy, cx) and clipped to
    the image; with cutmix_minmax, the box dgqa drew (its sides and corner are the draws)."""
    _, _, beta, lam, cy, cx, y0, y1, x0, x1 = (float(v) for v in draw)
    reported = (int(y0), int(y1), int(x0), int(x1))
    if minmax:
        box = reported
    else:
        half = int(size * math.sqrt(1 - beta)) // 2
        clip = lambda v: min(max(v, 0), size)
        box = (clip(int(cy) - half), clip(int(cy) + half), clip(int(cx) - half),
               clip(int(cx) + half))
        check(box == reported, f"dgqa's box {reported} is not rand_bbox's {box}")
    corrected = 1 - (box[1] - box[0]) * (box[3] - box[2]) / (size * size)
    check(abs(corrected - lam) < 1e-6, f"dgqa's lam {lam} is not the corrected {corrected}")
    return box, corrected


def mix_pair(x, original, i, j, draw, size, minmax):
    """Image i mixed with the original of image j under one draw; returns its label's weight."""
    mixed, cutmix, beta = float(draw[0]), float(draw[1]), float(draw[2])
    if not mixed:
        return 1.0
    if not cutmix:
        x[i] = original[i] * beta + original[j] * (1 - beta)
        return beta
    (y0, y1, x0, x1), lam = cutmix_box(draw, size, minmax)
    x[i][:, y0:y1, x0:x1] = original[j][:, y0:y1, x0:x1]
    return lam


def mixup(x, labels, draws, mode, smoothing, classes, minmax):
    """timm's Mixup on a batch in place order: image i is mixed with image B - 1 - i under one
    draw for the batch, one per pair (i, B - 1 - i) or one per image; returns the mixed images
    and the soft targets lam * smooth(y) + (1 - lam) * smooth(flipped y)."""
    n, size = len(x), x.shape[-1]
    original, x = x, x.clone()
    if mode == "batch":  # one draw: the batch against its flip
        draw, lam = draws[0], 1.0
        if draw[0] and draw[1]:
            (y0, y1, x0, x1), lam = cutmix_box(draw, size, minmax)
            x[:, :, y0:y1, x0:x1] = original.flip(0)[:, :, y0:y1, x0:x1]
        elif draw[0]:
            lam = float(draw[2])
            x = original * lam + original.flip(0) * (1 - lam)
        lam = torch.full((n,), lam, dtype=torch.float64)
    elif mode == "pair":
        half = torch.tensor([mix_pair(x, original, i, n - 1 - i, draws[i], size, minmax)
                             for i in range(n // 2)], dtype=torch.float64)
        for i in range(n // 2):  # the partner takes the same draw
            mix_pair(x, original, n - 1 - i, i, draws[i], size, minmax)
        lam = torch.cat([half, half.flip(0)])
    else:
        lam = torch.tensor([mix_pair(x, original, i, n - 1 - i, draws[i], size, minmax)
                            for i in range(n)], dtype=torch.float64)
    off = smoothing / classes
    smooth = F.one_hot(labels, classes).to(torch.float64) * (1 - smoothing) + off
    lam = lam.view(n, 1)
    return x, lam * smooth + (1 - lam) * smooth.flip(0)


def lr_decay_layer(name, depth):
    """timm's layer-wise decay groups: patch embedding, cls token, position embedding 0; block
    i is i + 1; the final norm joins the last block (depth); the head is depth + 1."""
    if name.startswith("patch_embed.") or name in ("cls_token", "pos_embed"):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return depth if name.startswith("norm.") else depth + 1


def param_groups(params, depth, args):
    """One group per tensor with its lr_scale and weight decay (timm: no decay for tensors of
    rank <= 1 and for cls_token, pos_embed)."""
    groups = []
    for name, p in params.items():
        no_decay = args.no_decay_1d and (p.ndim <= 1 or name in ("cls_token", "pos_embed"))
        scale = args.layer_decay ** (depth + 1 - lr_decay_layer(name, depth))
        groups.append({"params": [p], "lr_scale": scale,
                       "weight_decay": 0.0 if no_decay else args.weight_decay})
    return groups


def ema_decay(updates, args):
    """timm's ModelEmaV3.get_decay(step=updates) with update_after_step 0, min_decay 0,
    warmup_gamma 1 and warmup_power 2/3: no average before the second update."""
    s = max(0, updates - 1)
    if s == 0:
        return 0.0
    if args.ema_warmup:
        return max(min(1 - (1 + s) ** (-2 / 3), args.ema_decay), 0.0)
    return args.ema_decay


def train(w, images, labels, args):
    """args.steps steps on (images, labels); returns the trained parameters and DGQA
    allocations, and the weight average of the parameters (None without --ema-decay)."""
    depth = sum(1 for name in w if name.startswith("blocks.") and name.endswith(".norm1.weight"))
    params = {name: t.clone().requires_grad_(True) for name, t in w.items()
              if t.dtype == torch.float64 and not name.endswith((".cache", ".allocation"))}
    weights = dict(w, **params)
    average = {name: p.detach().clone() for name, p in params.items()}
    optimizer = torch.optim.AdamW(param_groups(params, depth, args), lr=args.lr,
                                  betas=(args.beta1, args.beta2), eps=args.eps)
    rates = lr_sequence(args.lr, args.steps, args.warmup_steps, args.schedule, args.min_lr,
                        args.warmup_start_factor, args.step_size, args.gamma, args.milestones,
                        args.cycle)
    for step, rate in enumerate(rates):
        for group in optimizer.param_groups:
            group["lr"] = rate * group["lr_scale"]
        optimizer.zero_grad()
        scale = drop_path(args.drop_path_rate, depth, args.seed, step, len(labels))
        if args.mixup_draws is None:
            logits = vit_logits(weights, images, args, scale, step)
            loss = F.cross_entropy(logits, labels, label_smoothing=args.label_smoothing)
        else:  # mixed in the batch's place order, then back in the examples' order
            order = epoch_order(len(labels), args.seed, step)
            classes = w["head.bias"].shape[0]
            mixed, target = mixup(images[order], labels[order], args.mixup_draws[step],
                                  args.mixup_mode, args.label_smoothing, classes,
                                  args.cutmix_minmax)
            by_example, targets = torch.empty_like(mixed), torch.empty_like(target)
            by_example[order], targets[order] = mixed, target
            logits = vit_logits(weights, by_example, args, scale, step)
            loss = (-targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()
        loss.backward()
        if args.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(list(params.values()), args.grad_clip)
        optimizer.step()
        with torch.no_grad():
            for name, p in params.items():
                average[name].lerp_(p, 1 - ema_decay(step + 1, args))
    trained = {name: p.detach().numpy() for name, p in params.items()}
    trained.update({name: t.numpy() for name, t in weights.items() if name.endswith(".allocation")})
    return trained, ({name: t.numpy() for name, t in average.items()} if args.ema_decay else None)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help="dgqa safetensors file to start from")
    parser.add_argument("--images", required=True, help="float32 .npy (N, C, S, S), normalised")
    parser.add_argument("--labels", required=True, help="integer .npy (N)")
    parser.add_argument("--scheme", required=True, choices=SCHEMES)
    parser.add_argument("--num-heads", type=int, required=True)
    parser.add_argument("--num-kv-heads", type=int, required=True)
    parser.add_argument("--patch-size", type=int, required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--weights-out", required=True, help="safetensors file to write")
    # optimizer { } and schedule { } of the config, with its defaults.
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--beta1", type=float, default=0.9)
    parser.add_argument("--beta2", type=float, default=0.999)
    parser.add_argument("--eps", type=float, default=1e-8)
    parser.add_argument("--grad-clip", type=float, default=0.0)
    parser.add_argument("--no-decay-1d", action="store_true")
    parser.add_argument("--seed", type=int, default=0, help="the config's seed (drop path, PGQA)")
    parser.add_argument("--dgqa-window", type=int, default=300)
    parser.add_argument("--dgqa-beta", type=float, default=0.9)
    parser.add_argument("--ema-decay", type=float, default=0.0, help="train.ema_decay; 0: none")
    parser.add_argument("--ema-warmup", action="store_true")
    parser.add_argument("--ema-out", help="safetensors file for the weight average")
    parser.add_argument("--drop-path-rate", type=float, default=0.0)
    parser.add_argument("--label-smoothing", type=float, default=0.0)
    parser.add_argument("--layer-decay", type=float, default=1.0)
    parser.add_argument("--warmup-steps", type=int, default=0)
    parser.add_argument("--schedule", choices=SCHEDULES, default="COSINE")
    parser.add_argument("--min-lr", type=float, default=0.0)
    parser.add_argument("--warmup-start-factor", type=float)
    parser.add_argument("--step-size", type=int, default=1)
    parser.add_argument("--gamma", type=float, default=0.1)
    parser.add_argument("--milestones", type=int, nargs="*", default=[])
    parser.add_argument("--cycle", type=float, nargs=4, default=[1, 1.0, 1.0, 0],
                        metavar=("STEPS", "MUL", "DECAY", "LIMIT"), help="COSINE_RESTARTS")
    parser.add_argument("--mixup-draws", help="float64 .npy (steps, draws, 10): dgqa's draws")
    parser.add_argument("--mixup-mode", choices=["batch", "pair", "elem"], default="batch")
    parser.add_argument("--cutmix-minmax", action="store_true", help="boxes from cutmix_minmax")
    args = parser.parse_args()
    args.pgqa_eval_noise = 0  # read by the model only for PGQA

    arrays = read_safetensors(args.weights)
    w = {name: torch.from_numpy(array.astype(np.float64 if array.dtype.kind == "f" else np.int64))
         for name, array in arrays.items()}
    images = np.load(args.images)
    check_shapes(w, images, args)
    labels = torch.from_numpy(np.load(args.labels).astype(np.int64))
    if args.mixup_draws is not None:
        args.mixup_draws = np.load(args.mixup_draws)
        check(args.mixup_draws.shape[0] >= args.steps, "--mixup-draws has fewer steps than --steps")
    trained, average = train(w, torch.from_numpy(images.astype(np.float64)), labels, args)
    write_safetensors(args.weights_out, trained, "F32")
    if args.ema_out:
        check(average is not None, "--ema-out needs --ema-decay")
        write_safetensors(args.ema_out, average, "F32")


if __name__ == "__main__":
    main()
