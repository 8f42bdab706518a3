#!/usr/bin/env python3
"""Writes a ViT checkpoint in timm's layout (fused attn.qkv) with random values, as safetensors.

For trying `dgqa convert` and `dgqa train --init-from` without timm or PyTorch, and for the
tests (tests/convert_test.cc), which need a file that dgqa did not write. Needs numpy only: the
file format is written by hand.

  python3 tools/make_timm_checkpoint.py timm.safetensors --image-size 8 --patch-size 4 \\
      --embed-dim 16 --depth 2 --in-channels 1 --num-classes 10

The tensors and their shapes are those of timm's VisionTransformer with a class token and
learned position embeddings (docs/design.md §4, with attn.qkv (3D, D) in place of attn.q,
attn.k and attn.v). The number of heads does not appear in the file.
"""
import argparse

import numpy as np

from safetensors_numpy import write_safetensors


def timm_vit_shapes(image_size, patch_size, embed_dim, depth, in_channels, num_classes):
    """Tensor name -> shape, in the order timm's state_dict lists them."""
    D = embed_dim
    tokens = (image_size // patch_size) ** 2 + 1
    shapes = {
        "cls_token": (1, 1, D),
        "pos_embed": (1, tokens, D),
        "patch_embed.proj.weight": (D, in_channels, patch_size, patch_size),
        "patch_embed.proj.bias": (D,),
    }
    for i in range(depth):
        block = f"blocks.{i}."
        for name, shape in [
            ("norm1.weight", (D,)), ("norm1.bias", (D,)),
            ("attn.qkv.weight", (3 * D, D)), ("attn.qkv.bias", (3 * D,)),
            ("attn.proj.weight", (D, D)), ("attn.proj.bias", (D,)),
            ("norm2.weight", (D,)), ("norm2.bias", (D,)),
            ("mlp.fc1.weight", (4 * D, D)), ("mlp.fc1.bias", (4 * D,)),
            ("mlp.fc2.weight", (D, 4 * D)), ("mlp.fc2.bias", (D,)),
        ]:
            shapes[block + name] = shape
    shapes.update({
        "norm.weight": (D,), "norm.bias": (D,),
        "head.weight": (num_classes, D), "head.bias": (num_classes,),
    })
    return shapes


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", help="the .safetensors file to write")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--patch-size", type=int, default=16)
    parser.add_argument("--embed-dim", type=int, default=192)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--dtype", choices=["F32", "F16"], default="F32")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    shapes = timm_vit_shapes(args.image_size, args.patch_size, args.embed_dim, args.depth,
                             args.in_channels, args.num_classes)
    arrays = {name: 0.1 * rng.standard_normal(shape) for name, shape in shapes.items()}
    write_safetensors(args.out, arrays, args.dtype)


if __name__ == "__main__":
    main()
