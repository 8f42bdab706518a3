#!/usr/bin/python3
"""The PyTorch side of bench/compare_loader.sh: torchvision's ImageFolder in a DataLoader with
the transforms dgqa's config names, timed as `dgqa bench --data-only` times its loader: images
per second over STEPS batches after WARMUP, and the peak resident memory of the main process
and its workers together (sampled every 50 ms). Prints one JSON object.

    torch_loader_peer.py ROOT --split train|eval --workers W --batch B [--steps N] [--warmup N]
        [--image-size S] [--rand-augment N,M] [--crop-pct P] [--interpolation bilinear|bicubic]
"""
import argparse
import json
import os
import threading
import time

import torch
from torchvision import datasets, transforms


def resident_mib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--split", choices=["train", "eval"], default="train")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--rand-augment", default="2,9")
    parser.add_argument("--crop-pct", type=float, default=0.875)
    parser.add_argument("--interpolation", choices=["bilinear", "bicubic"], default="bilinear")
    args = parser.parse_args()
    torch.set_num_threads(1)
    mode = getattr(transforms.InterpolationMode, args.interpolation.upper())
    normalize = [transforms.ToTensor(), transforms.Normalize([0.5] * 3, [0.5] * 3)]
    if args.split == "train":
        num_ops, magnitude = (int(v) for v in args.rand_augment.split(","))
        steps = [transforms.RandomResizedCrop(args.image_size, interpolation=mode),
                 transforms.RandomHorizontalFlip()]
        if num_ops > 0:
            steps.append(transforms.RandAugment(num_ops, magnitude))
        folder = "train"
    else:
        steps = [transforms.Resize(int(args.image_size / args.crop_pct), interpolation=mode),
                 transforms.CenterCrop(args.image_size)]
        folder = "val"
    dataset = datasets.ImageFolder(os.path.join(args.root, folder),
                                   transforms.Compose(steps + normalize))
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch,
                                         shuffle=args.split == "train", drop_last=True,
                                         num_workers=args.workers, persistent_workers=True)
    peak = [0.0]
    done = threading.Event()

    def sample_memory():
        while not done.is_set():
            pids = [os.getpid()] + children(os.getpid())
            peak[0] = max(peak[0], resident_mib(pids))
            time.sleep(0.05)

    threading.Thread(target=sample_memory, daemon=True).start()
    images, start, step = 0, time.perf_counter(), 0
    while step < args.warmup + args.steps:
        for batch, _ in loader:
            if step == args.warmup:
                images, start = 0, time.perf_counter()
            images += batch.shape[0]
            step += 1
            if step == args.warmup + args.steps:
                break
    seconds = time.perf_counter() - start
    done.set()
    print(json.dumps({"images_per_sec": images / seconds, "peak_memory_mib": peak[0],
                      "workers": args.workers, "batch": args.batch, "split": args.split}))


if __name__ == "__main__":
    main()
