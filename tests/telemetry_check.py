#!/usr/bin/env python3
"""Recomputes the allocations of a run from the key norms its metrics.jsonl records.

Usage: telemetry_check.py METRICS SCHEME HEADS WINDOW BETA

The allocation rules of docs/design.md §3.2-3.3 are written here again, independently of
model/allocation.cc, with numpy's float32 where dgqa computes in float32: KDGQA's allocation
at every key_norms record must be the allocation logged at that step, DGQA's must be the
allocation in effect at that step, and DGQA's caches must follow from the recorded norms.
Prints every mismatch and exits 1 if there is one (0 otherwise).
"""

import json
import sys

import numpy as np


def equal_split(heads, groups):
    return [heads // groups + (1 if g < heads % groups else 0) for g in range(groups)]


def kdgqa(norms, heads):
    n = [np.float32(v) for v in norms]
    if not all(np.isfinite(v) for v in n):
        return equal_split(heads, len(n))
    lo, hi = min(n), max(n)
    if hi == lo:
        return equal_split(heads, len(n))
    m = [np.float32((v - lo) / (hi - lo)) for v in n]
    total = np.float32(0)
    for v in m:  # left to right, as a plain loop adds them
        total = np.float32(total + v)
    a = [int(np.rint(np.float32(np.float32(v / total) * np.float32(heads)))) for v in m]
    while sum(a) > heads:
        a[a.index(max(a))] -= 1
    while sum(a) < heads:
        a[a.index(min(a))] += 1
    return a


def apportion(scores, heads):
    if not all(np.isfinite(s) for s in scores) or sum(scores) == 0:
        return equal_split(heads, len(scores))
    total = 0.0
    for s in scores:
        total += s
    q = [s / total * heads for s in scores]
    a = [int(np.rint(v)) for v in q]
    while sum(a) > heads:
        pick = max((i for i in range(len(a)) if a[i] > 0), key=lambda i: (a[i] - q[i], -i))
        a[pick] -= 1
    while sum(a) < heads:
        pick = max(range(len(a)), key=lambda i: (q[i] - a[i], -i))
        a[pick] += 1
    return a


def dgqa_scores(scheme, norms, cache, beta):
    b = float(np.float32(beta))
    if scheme == "DGQA_DIFF":
        return [abs(float(c) - float(n)) for n, c in zip(norms, cache)]
    return [b * float(n) + (1.0 - b) * float(c) for n, c in zip(norms, cache)]


def next_cache(norms, cache, window):
    return [float(np.float32(np.float32(c) + np.float32(n)) / np.float32(window))
            for n, c in zip(norms, cache)]


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
                want = kdgqa(norms, heads)
                got = logged[0]["layers"][layer] if logged else None
                self.expect(got == want, f"step {record['step']} layer {layer}: logged {got}, "
                            f"recomputed {want} from {norms}")

    def check_dgqa(self, scheme, heads, window, beta):
        decisions = self.of_kind("key_norms")
        steps = [r["step"] for r in decisions]
        last = max(r["step"] for r in self.of_kind("train"))
        self.expect(steps == list(range(1, last + 1, window)),
                    f"key_norms at steps {steps}, expected every window step from 1")
        caches = None
        for record in decisions:
            step = record["step"]
            if caches is None:
                caches = [[0.0] * len(n) for n in record["layers"]]
            self.expect(record["cache_before"] == caches,
                        f"step {step}: cache_before {record['cache_before']}, expected {caches}")
            in_effect = self.allocation_at(step)
            for layer, norms in enumerate(record["layers"]):
                cache = record["cache_before"][layer]
                want = apportion(dgqa_scores(scheme, norms, cache, beta), heads)
                got = in_effect[layer] if in_effect else None
                self.expect(got == want, f"step {step} layer {layer}: in effect {got}, "
                            f"recomputed {want} from norms {norms} and cache {cache}")
            caches = [next_cache(n, c, window)
                      for n, c in zip(record["layers"], record["cache_before"])]
            for logged in self.of_kind("dgqa_cache"):
                if step <= logged["step"] < step + window:
                    self.expect(logged["layers"] == caches,
                                f"dgqa_cache at step {logged['step']}: {logged['layers']}, "
                                f"expected {caches}")


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    path, scheme = sys.argv[1], sys.argv[2]
    heads, window, beta = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
    with open(path) as f:
        checker = Checker([json.loads(line) for line in f])
    if scheme == "KDGQA":
        checker.check_kdgqa(heads)
    else:
        checker.check_dgqa(scheme, heads, window, beta)
    for problem in checker.problems:
        print(f"{path}: {problem}")
    sys.exit(1 if checker.problems else 0)


if __name__ == "__main__":
    main()
