#!/usr/bin/env python3
"""Recomputes the allocations of a run from the key norms its metrics.jsonl records.

Usage: telemetry_check.py METRICS SCHEME HEADS WINDOW BETA
           [--steps-per-epoch N] [--random-fixup-seed SEED]

The allocation rules of docs/design.md §3.2-3.3 come from tools/allocation_reference.py, written
independently of model/allocation.cc: KDGQA's allocation
at every key_norms record must be the allocation logged at that step, DGQA's must be the
allocation in effect at that step, and DGQA's caches must follow from the recorded norms.
--steps-per-epoch: DGQA's window counts the steps of each epoch (dgqa_window_counter
EPOCH_STEP). --random-fixup-seed: DGQA corrects its rounding at drawn indices (dgqa_fixup
RANDOM_INDEX) from the run's seed. Prints every mismatch and exits 1 if there is one (0 otherwise).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from allocation_reference import (apportion, dgqa_scores, fixup_draws,  # noqa: E402
                                  kdgqa_allocation, next_cache)


class Checker:
    def __init__(self, records):
        self.records = records
        self.problems = []

    def of_kind(self, kind):
        return [r for r in self.records if r.get("kind") == kind]

    def allocation_at(self, step):
        """The allocation in effect after `step` steps: the last one logged at or before it."""
        logged = [r for r in self.of_kind("allocation") if r["step"] <= step]
        return logged[-1]["layers"] if logged else None

    def expect(self, condition, message):
        if not condition:
            self.problems.append(message)

    def check_kdgqa(self, heads):
        decisions = self.of_kind("key_norms")
        self.expect(decisions, "no key_norms records")
        for record in decisions:
            logged = [r for r in self.of_kind("allocation") if r["step"] == record["step"]]
            self.expect(len(logged) == 1, f"step {record['step']}: no allocation record")
            for layer, norms in enumerate(record["layers"]):
                want = kdgqa_allocation(norms, heads).tolist()
                got = logged[0]["layers"][layer] if logged else None
                self.expect(got == want, f"step {record['step']} layer {layer}: logged {got}, "
                            f"recomputed {want} from {norms}")

    def check_dgqa(self, scheme, heads, window, beta, steps_per_epoch, seed):
        decisions = self.of_kind("key_norms")
        steps = [r["step"] for r in decisions]
        last = max(r["step"] for r in self.of_kind("train"))
        per_epoch = steps_per_epoch or last
        expected = [t + 1 for t in range(last) if t % per_epoch % window == 0]
        self.expect(steps == expected, f"key_norms at steps {steps}, expected {expected}")
        caches = None
        for index, record in enumerate(decisions):
            step = record["step"]
            until = decisions[index + 1]["step"] if index + 1 < len(decisions) else last + 1
            if caches is None:
                caches = [[0.0] * len(n) for n in record["layers"]]
            self.expect(record["cache_before"] == caches,
                        f"step {step}: cache_before {record['cache_before']}, expected {caches}")
            in_effect = self.allocation_at(step)
            for layer, norms in enumerate(record["layers"]):
                cache = record["cache_before"][layer]
                draws = None if seed is None else fixup_draws(seed, step - 1, layer, len(norms))
                want = apportion(dgqa_scores(scheme, norms, cache, beta), heads, draws).tolist()
                got = in_effect[layer] if in_effect else None
                self.expect(got == want, f"step {step} layer {layer}: in effect {got}, "
                            f"recomputed {want} from norms {norms} and cache {cache}")
            caches = [next_cache(n, c, window)
                      for n, c in zip(record["layers"], record["cache_before"])]
            for logged in self.of_kind("dgqa_cache"):
                if step <= logged["step"] < until:
                    self.expect(logged["layers"] == caches,
                                f"dgqa_cache at step {logged['step']}: {logged['layers']}, "
                                f"expected {caches}")


def main():
    parser = argparse.ArgumentParser(usage=__doc__.split("\n\n")[1][len("Usage: "):])
    parser.add_argument("metrics")
    parser.add_argument("scheme")
    parser.add_argument("heads", type=int)
    parser.add_argument("window", type=int)
    parser.add_argument("beta", type=float)
    parser.add_argument("--steps-per-epoch", type=int, default=0)
    parser.add_argument("--random-fixup-seed", type=int, default=None)
    args = parser.parse_args()
    with open(args.metrics) as f:
        checker = Checker([json.loads(line) for line in f])
    if args.scheme == "KDGQA":
        checker.check_kdgqa(args.heads)
    else:
        checker.check_dgqa(args.scheme, args.heads, args.window, args.beta,
                           args.steps_per_epoch, args.random_fixup_seed)
    for problem in checker.problems:
        print(f"{args.metrics}: {problem}")
    sys.exit(1 if checker.problems else 0)


if __name__ == "__main__":
    main()
