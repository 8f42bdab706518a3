#!/usr/bin/python3
"""The learning rates of the LR schedule cases of tests/lr_schedule_test.cc, from torch's
schedulers (tools/torch_training.py's lr_sequence): writes a JSON list of
{"lr", "total", "schedule" (the config's schedule section as text), "lrs"} to argv[1]."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from torch_training import lr_sequence  # noqa: E402

CASES = [  # the fields of the config's schedule section
    dict(kind="LINEAR", warmup_steps=5, min_lr=1e-5),
    dict(kind="LINEAR", warmup_steps=4, warmup_start_factor=0.1),
    dict(kind="STEP", step_size=3, gamma=0.5),
    dict(kind="STEP", warmup_steps=4, warmup_start_factor=0.3, step_size=4, gamma=0.7),
    dict(kind="MULTI_STEP", milestones=[2, 5, 9], gamma=0.3),
    dict(kind="MULTI_STEP", warmup_steps=3, milestones=[1, 12], gamma=0.25),
    dict(kind="COSINE", warmup_steps=6, warmup_start_factor=0.01, min_lr=2e-5),
    dict(kind="CONSTANT", warmup_steps=7, warmup_start_factor=0.5),
    dict(kind="COSINE_RESTARTS", warmup_steps=2, cycle_steps=4, min_lr=1e-5),
    dict(kind="COSINE_RESTARTS", cycle_steps=3, cycle_mul=2, cycle_decay=0.5),
    dict(kind="COSINE_RESTARTS", warmup_steps=2, warmup_start_factor=0.1, cycle_steps=3,
         cycle_mul=1.5, cycle_decay=0.8, cycle_limit=3, min_lr=1e-5),
]


def text(fields):
    return " ".join(f"{name}: {json.dumps(value)}" if name != "kind" else f"kind: {value}"
                    for name, value in fields.items())


def main():
    lr, total, out = 1e-3, 20, []
    for fields in CASES:
        rates = lr_sequence(lr, total, fields.get("warmup_steps", 0), fields["kind"],
                            fields.get("min_lr", 0.0), fields.get("warmup_start_factor"),
                            fields.get("step_size", 1), fields.get("gamma", 0.1),
                            fields.get("milestones", ()),
                            (fields.get("cycle_steps", 1), fields.get("cycle_mul", 1.0),
                             fields.get("cycle_decay", 1.0), fields.get("cycle_limit", 0)))
        out.append({"lr": lr, "total": total, "schedule": text(fields), "lrs": rates})
    with open(sys.argv[1], "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
