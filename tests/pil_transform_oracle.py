#!/usr/bin/python3
"""Applies PIL 9.4 / torchvision 0.14 operations for the C++ tests that compare against them.

Usage: pil_transform_oracle.py JOBS_FILE. Each line of JOBS_FILE is one job, fields separated by
spaces; images are raw 8-bit HWC files (channels 1 = mode "L", 3 = "RGB"):

  resize IN OUT W H C OUT_W OUT_H FILTER LEFT TOP RIGHT BOTTOM   FILTER: nearest|bilinear|bicubic
  op IN OUT W H C NAME MAGNITUDE        torchvision's RandAugment _apply_op, nearest, fill None
  center_crop IN OUT W H C CROP_W CROP_H                F.center_crop((CROP_H, CROP_W))
  shorter_side OUT W H SIZE          writes "new_w new_h" of F.resize(size=SIZE) for a W x H image
  rrc OUT W H SCALE_LO SCALE_HI RATIO_LO RATIO_HI     writes "top left height width" of
      RandomResizedCrop.get_params under torch.manual_seed(0) (for the deterministic fallbacks)
  space OUT BINS W H    writes RandAugment's magnitude table: one "name signed m0 m1 ..." per op

Exits 3 when PIL or torchvision cannot be imported (the tests then skip).
"""
import sys

try:
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.transforms import InterpolationMode, autoaugment, transforms
    from torchvision.transforms import functional as F
except ImportError as error:
    print(f"oracle: {error}", file=sys.stderr)
    sys.exit(3)

FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


def load(path, w, h, c):
    data = np.fromfile(path, dtype=np.uint8)
    if c == 1:
        return Image.fromarray(data.reshape(h, w), "L")
    return Image.fromarray(data.reshape(h, w, c), "RGB")


def save(image, path):
    np.asarray(image, dtype=np.uint8).tofile(path)


def run(fields):
    kind = fields[0]
    if kind == "shorter_side":
        out, w, h, size = fields[1], int(fields[2]), int(fields[3]), int(fields[4])
        new_h, new_w = F._compute_resized_output_size((h, w), [size])
        with open(out, "w") as f:
            f.write(f"{new_w} {new_h}\n")
        return
    if kind == "rrc":
        out, w, h = fields[1], int(fields[2]), int(fields[3])
        scale, ratio = [float(fields[4]), float(fields[5])], [float(fields[6]), float(fields[7])]
        torch.manual_seed(0)
        rect = transforms.RandomResizedCrop.get_params(Image.new("L", (w, h)), scale, ratio)
        with open(out, "w") as f:
            f.write(" ".join(str(int(v)) for v in rect) + "\n")
        return
    if kind == "space":
        out, bins, w, h = fields[1], int(fields[2]), int(fields[3]), int(fields[4])
        space = autoaugment.RandAugment(num_magnitude_bins=bins)._augmentation_space(bins, (h, w))
        with open(out, "w") as f:
            for name, (values, signed) in space.items():
                values = values.reshape(-1).tolist()
                f.write(" ".join([name, str(int(signed))] + [repr(float(v)) for v in values]))
                f.write("\n")
        return
    src, out = fields[1], fields[2]
    w, h, c = int(fields[3]), int(fields[4]), int(fields[5])
    image = load(src, w, h, c)
    if kind == "resize":
        size = (int(fields[6]), int(fields[7]))
        box = tuple(float(v) for v in fields[9:13])
        result = image.resize(size, FILTERS[fields[8]], box=box)
    elif kind == "op":
        # float() of the C++ float's exact decimal: the same value torchvision gets from
        # float(tensor.item()).
        result = autoaugment._apply_op(
            image, fields[6], float(fields[7]), interpolation=InterpolationMode.NEAREST, fill=None
        )
    elif kind == "center_crop":
        result = F.center_crop(image, [int(fields[7]), int(fields[6])])
    else:
        raise ValueError(f"unknown job {kind}")
    save(result, out)


def main():
    torch.set_num_threads(1)
    with open(sys.argv[1]) as jobs:
        for line in jobs:
            if line.strip():
                run(line.split())


if __name__ == "__main__":
    main()
