#!/usr/bin/env python3
"""Writes a dgqa MHA model (our layout: attn.q, attn.k, attn.v) in timm's layout (attn.qkv fused),
for timm and for `dgqa convert`, which turns an MHA model into any GQA-family scheme.

  python3 tools/export_timm.py runs/mha/model.safetensors runs/mha/timm.safetensors

Needs numpy only. The K/V projections must have as many rows as q (MHA); DGQA state tensors,
which timm does not know, are left out.
"""
import argparse
import sys

import numpy as np

from safetensors_numpy import read_safetensors, write_safetensors


def to_timm(tensors):
    out = {}
    for name, array in tensors.items():
        if name.endswith((".attn.cache", ".attn.allocation")):
            continue
        if ".attn.k." in name or ".attn.v." in name:
            continue  # fused below, with attn.q
        if ".attn.q." in name:
            k, v = name.replace(".q.", ".k."), name.replace(".q.", ".v.")
            if tensors[k].shape != array.shape or tensors[v].shape != array.shape:
                sys.exit(f"{k} has shape {tensors[k].shape}, {name} {array.shape}: "
                         "not an MHA model (convert only MHA to timm's layout)")
            out[name.replace(".attn.q.", ".attn.qkv.")] = np.concatenate(
                [array, tensors[k], tensors[v]], axis=0)
            continue
        out[name] = array
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a model.safetensors written by dgqa (MHA)")
    parser.add_argument("target", help="the timm-layout file to write")
    args = parser.parse_args()
    write_safetensors(args.target, to_timm(read_safetensors(args.source)), "F32")


if __name__ == "__main__":
    main()
