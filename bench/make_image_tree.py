#!/usr/bin/python3
"""Writes an ImageNet-like image folder for the loader benchmark: ROOT/train/<class>/<i>.JPEG
and ROOT/val/<class>/<i>.JPEG, about 500x375 (sizes vary by +-20%, some portrait), JPEG
quality 90, 4:2:0. The content is smooth colour fields with edges and fine texture, so that the
files are as large as photographs of that size (about 100-150 KB) and decode as slowly.

    make_image_tree.py ROOT [--train N] [--val N] [--classes C] [--seed S]
"""
import argparse
import os

import numpy as np
from PIL import Image


def synthetic_photo(rng, width, height):
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.zeros((height, width, 3), np.float32)
    for channel in range(3):
        for _ in range(4):  # low-frequency colour fields
            fx, fy = rng.uniform(0.002, 0.02, 2)
            phase = rng.uniform(0, 6.3)
            image[:, :, channel] += 40 * np.sin(fx * x * 6.3 + fy * y * 6.3 + phase)
    for _ in range(6):  # hard-edged shapes
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        radius = rng.integers(20, 120)
        mask = (x - x0) ** 2 + (y - y0) ** 2 < radius**2
        image[mask] += rng.uniform(-60, 60, 3)
    image += 128 + rng.normal(0, 12, image.shape)  # sensor-like texture
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--train", type=int, default=4000)
    parser.add_argument("--val", type=int, default=1000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    for split, count in (("train", args.train), ("val", args.val)):
        for i in range(count):
            folder = os.path.join(args.root, split, f"n{i % args.classes:08d}")
            os.makedirs(folder, exist_ok=True)
            width, height = int(500 * rng.uniform(0.8, 1.2)), int(375 * rng.uniform(0.8, 1.2))
            if rng.uniform() < 0.2:
                width, height = height, width
            synthetic_photo(rng, width, height).save(
                os.path.join(folder, f"{i:06d}.JPEG"), quality=90)


if __name__ == "__main__":
    main()
