"""The query-head allocation rules of docs/design.md §3.2-3.3 and the Philox generator of §3.4,
written in numpy from the specification, independently of model/allocation.cc and
common/philox.h. Shared by the Python oracles: tools/torch_reference.py (the PyTorch model) and
tests/telemetry_check.py (which recomputes a run's logged allocations). Needs only numpy.

Where dgqa computes in float32 (KDGQA's quotas, the DGQA cache) these do too, with numpy's
float32; DGQA's scores and quotas are float64, as the specification has them.
"""
import numpy as np

MASK = 0xFFFFFFFF
FIXUP_LAYER_TAG = 0x80000000  # the random fix-up's counter word c2 is this | layer (§3.3)


# ---- Philox4x32-10 (docs/design.md §3.4) ----

def philox4x32_10(counter, key):
    """Philox4x32-10 of the four counter words (numpy arrays of 32-bit values, held in uint64
    so that the 32x32-bit products are exact) under a 64-bit key; returns the four output words."""
    mask, shift = np.uint64(MASK), np.uint64(32)
    c0, c1, c2, c3 = (np.asarray(word, dtype=np.uint64) for word in counter)
    k0, k1 = np.uint64(key & MASK), np.uint64(key >> 32)
    for _ in range(10):
        p0 = np.uint64(0xD2511F53) * c0
        p1 = np.uint64(0xCD9E8D57) * c2
        c0, c1, c2, c3 = (p1 >> shift) ^ c1 ^ k0, p1 & mask, (p0 >> shift) ^ c3 ^ k1, p0 & mask
        k0 = (k0 + np.uint64(0x9E3779B9)) & mask
        k1 = (k1 + np.uint64(0xBB67AE85)) & mask
    return c0, c1, c2, c3


def philox_words(key, c1, c2, c3, index):
    """Elements `index` (a 1-D array) of the word stream (key, c1, c2, c3): element e is word
    e % 4 of Philox(counter (e // 4, c1, c2, c3), key)."""
    index = np.asarray(index, dtype=np.uint64)
    words = np.stack(philox4x32_10((index // np.uint64(4), c1, c2, c3), key))
    return words[(index % np.uint64(4)).astype(np.intp), np.arange(index.size)]


def philox_uniforms(key, c1, c2, c3, index):
    """The same elements made uniform in [0, 1) from their top 24 bits."""
    return (philox_words(key, c1, c2, c3, index) >> np.uint64(8)).astype(np.float64) / 2.0**24


# ---- Allocations ----

def equal_split(heads, groups):
    return np.array([heads // groups + (1 if g < heads % groups else 0) for g in range(groups)],
                    dtype=np.int64)


def kdgqa_allocation(norms, heads):
    """§3.2: quotas in float32 from min-max normalised key norms, rounded half to even, then one
    head at a time off the largest / onto the smallest count (first index on ties)."""
    n = np.asarray(norms, dtype=np.float32)
    if not np.all(np.isfinite(n)) or n.max() == n.min():
        return equal_split(heads, n.size)
    m = (n - n.min()) / (n.max() - n.min())
    total = np.float32(0)
    for value in m:  # summed in index order, as a plain loop adds them
        total = np.float32(total + value)
    a = np.rint(m / total * np.float32(heads)).astype(np.int64)
    while a.sum() > heads:
        a[np.argmax(a)] -= 1
    while a.sum() < heads:
        a[np.argmin(a)] += 1
    return a


def fixup_draws(seed, step_word, layer, groups, batch=0):
    """The K/V heads drawn by the random fix-up (model.dgqa_fixup RANDOM_INDEX, §3.3), one after
    another: step_word is the training step (or 0xFFFFFFFF at evaluation, with the batch)."""
    n = 0
    while True:
        word = philox_words(seed, step_word & MASK, FIXUP_LAYER_TAG | layer, batch, [n])[0]
        yield (int(word >> np.uint64(8)) * groups) >> 24
        n += 1


def apportion(scores, heads, draws=None):
    """§3.3: heads in proportion to the (float64) scores, rounded half to even, corrected by the
    largest surplus / deficit (first index on ties), or at drawn indices when `draws` is given."""
    if not all(np.isfinite(s) for s in scores) or sum(scores) == 0:
        return equal_split(heads, len(scores))
    total = 0.0
    for s in scores:
        total += s
    q = [s / total * heads for s in scores]
    a = [int(np.rint(v)) for v in q]
    if draws is not None:
        while sum(a) != heads:
            i = next(draws)
            if sum(a) < heads:
                a[i] += 1
            elif a[i] > 0:
                a[i] -= 1
        return np.array(a, dtype=np.int64)
    while sum(a) > heads:
        pick = max((i for i in range(len(a)) if a[i] > 0), key=lambda i: (a[i] - q[i], -i))
        a[pick] -= 1
    while sum(a) < heads:
        pick = max(range(len(a)), key=lambda i: (q[i] - a[i], -i))
        a[pick] += 1
    return np.array(a, dtype=np.int64)


def dgqa_scores(scheme, norms, cache, beta):
    """DGQA_DIFF's |cache - n| or DGQA_EMA's b n + (1 - b) cache, in float64 (b: float32 beta)."""
    b = float(np.float32(beta))
    if scheme == "DGQA_DIFF":
        return [abs(float(c) - float(n)) for n, c in zip(norms, cache)]
    return [b * float(n) + (1.0 - b) * float(c) for n, c in zip(norms, cache)]


def next_cache(norms, cache, window):
    """The cache after a window step: (cache + n) / window in float32."""
    return [float(np.float32(np.float32(c) + np.float32(n)) / np.float32(window))
            for n, c in zip(norms, cache)]
