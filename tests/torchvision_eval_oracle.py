#!/usr/bin/env python3
"""Oracle of tests/image_data_test.cc (TorchvisionEval): writes an image folder of awkward
files, and the evaluation inputs torchvision makes of them.

    torchvision_eval_oracle.py make ROOT
    torchvision_eval_oracle.py expect ROOT OUT.npy SIZE CROP_PCT bilinear|bicubic RGB|L

`make` writes ROOT/train/<class>/... and ROOT/val/<class>/... (the same files in both).
`expect` writes float32 (N, C, SIZE, SIZE): for each file of ROOT/val in ImageFolder's order,
Image.open(f).convert(mode), Resize(floor(SIZE / CROP_PCT)), CenterCrop(SIZE), ToTensor,
Normalize(0.5, 0.5): what timm's evaluation transform gives a pretrained model.
"""
import math
import os
import sys

import numpy as np
from PIL import Image
import torch
from torchvision import datasets, transforms


def textured(width, height, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = 127 + 60 * np.sin(x / 7.0 + seed) + 50 * np.cos(y / 11.0)
    pixels = base[:, :, None] + rng.normal(0, 20, (height, width, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def make(root):
    files = {}
    rgb = lambda w, h, s: Image.fromarray(textured(w, h, s))
    files["a/rgb_500x375.jpg"] = rgb(500, 375, 1)
    files["a/big_1200x900.jpg"] = rgb(1200, 900, 2)  # shrunk in the DCT domain
    files["a/gray.jpg"] = rgb(333, 251, 3).convert("L")
    files["a/cmyk.jpg"] = rgb(301, 217, 4).convert("CMYK")
    files["b/rgba.png"] = Image.fromarray(np.dstack([textured(260, 190, 5),
                                                     np.full((190, 260), 77, np.uint8)]), "RGBA")
    files["b/palette.png"] = rgb(240, 180, 6).convert("P", palette=Image.ADAPTIVE, colors=64)
    sixteen = (textured(150, 170, 7)[:, :, 0].astype(np.uint16) * 3)  # values up to 765
    files["b/gray16.png"] = Image.fromarray(sixteen.astype(np.uint16), "I;16")
    files["b/tiny_1x1.png"] = rgb(1, 1, 8)
    files["b/tiny_3x2.png"] = rgb(3, 2, 9)
    files["c/wide_400x9.png"] = rgb(400, 9, 10)
    files["c/tall_9x400.jpg"] = rgb(9, 400, 11)
    files["c/odd_257x255.png"] = rgb(257, 255, 12)
    for split in ("train", "val"):
        for name, image in files.items():
            path = os.path.join(root, split, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            image.save(path, quality=90) if name.endswith(".jpg") else image.save(path)


def expect(root, out, size, crop_pct, interpolation, mode):
    resample = getattr(transforms.InterpolationMode, interpolation.upper())
    transform = transforms.Compose([
        transforms.Resize(math.floor(size / crop_pct), interpolation=resample),
        transforms.CenterCrop(size), transforms.ToTensor(),
        transforms.Normalize([0.5] * len(mode), [0.5] * len(mode))])
    dataset = datasets.ImageFolder(os.path.join(root, "val"),
                                   loader=lambda p: Image.open(p).convert(mode))
    inputs = torch.stack([transform(dataset[i][0]) for i in range(len(dataset))])
    np.save(out, inputs.numpy().astype(np.float32))


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        expect(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), sys.argv[6],
               sys.argv[7])
