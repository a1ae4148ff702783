"""The arithmetic of filter_unlabel (upstream `filter_unlabel.py`, `get_threshold` and `get_keep_image_idx`):
confidence histograms, per-class thresholds, copies.

Pure numpy, no files: `filter_shards` does the reading, waiting and writing. Classes are the strings
'0' .. 'C-1' (upstream's "uid"), and an image's confidence is its probability of its predicted class.
"""

from __future__ import annotations

import math

import numpy as np

from noisy_student_tf.errors import UserError

# Upstream `filter_unlabel.py`, `main`: the threshold grid is the 101 values i/100, compared as Python floats.
GRID = [i / 100.0 for i in range(101)]
_GRID = np.asarray(GRID, np.float64)


def class_names(num_classes: int) -> list[str]:
    return [str(c) for c in range(num_classes)]


def histogram(labels: np.ndarray, top_probs: np.ndarray, num_classes: int) -> np.ndarray:
    """[C, 101] counts: images predicted as class c with GRID[j] <= prob < GRID[j+1] (last bin: prob >= 1.0)."""
    bins = np.searchsorted(_GRID, np.asarray(top_probs, np.float64), side="right") - 1
    counts = np.zeros((num_classes, len(GRID)), np.int64)
    np.add.at(counts, (np.asarray(labels, np.int64), np.clip(bins, 0, len(GRID) - 1)), 1)
    return counts


def histogram_json(counts: np.ndarray, all_classes: bool) -> dict:
    """Upstream `filter_unlabel.py`, `get_threshold`, prelim_stats / total_counts: {"c": [[0.0, n0], ...,
    [1.0, n100]]}; a shard's file lists only the classes it predicted, total_counts lists all of them."""
    return {str(c): [[GRID[j], int(counts[c, j])] for j in range(len(GRID))]
            for c in range(counts.shape[0]) if all_classes or counts[c].sum() > 0}


def histogram_from_json(data, num_classes: int, source: str) -> np.ndarray:
    counts = np.zeros((num_classes, len(GRID)), np.int64)
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a JSON object of class -> [[threshold, count], ...] "
                        "(as upstream filter_unlabel.py writes it)")
    for name, pairs in data.items():
        if not (name.isdigit() and int(name) < num_classes):
            raise UserError(f"{source}: class {name!r} is not one of 0..{num_classes - 1} "
                            "(check --num_label_classes)")
        if not (isinstance(pairs, list) and len(pairs) == len(GRID)
                and all(isinstance(p, list) and len(p) == 2 and p[0] == t for p, t in zip(pairs, GRID))):
            raise UserError(f"{source}: class {name!r} does not hold the 101 pairs [[0.0, n], ..., [1.0, n]]")
        counts[int(name)] = [int(n) for _, n in pairs]
    return counts


def suffix_sums(counts: np.ndarray) -> np.ndarray:
    """N(prob >= GRID[j]) per class (total_counts_sum.json)."""
    return np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]


def select_thresholds(total_counts: np.ndarray, *, num_image: int, min_threshold: float, max_prob: float,
                      use_top: bool, use_all: bool) -> list[tuple[float, int]]:
    """Upstream `filter_unlabel.py`, `get_threshold`: per class (threshold, total_image = N(prob >= threshold))."""
    selected = []
    for c in range(total_counts.shape[0]):
        total, chosen = 0, None
        for j in range(len(GRID) - 1, -1, -1):
            t = GRID[j]
            if not (t < max_prob and t >= min_threshold):
                continue
            total += int(total_counts[c, j])
            if not use_all and use_top and total >= num_image:
                chosen = t
                break
            if t == min_threshold:
                chosen = t
                break
        if chosen is None:
            # Upstream get_threshold stops at the grid value equal to min_threshold (float equality), so an
            # off-grid min_threshold works only where a higher grid value already keeps num_image images;
            # elsewhere its `assert threshold_idx != -1` fails.
            if min_threshold not in GRID:
                raise UserError(f"class {c}: no threshold found: --min_threshold={min_threshold} is not on the "
                                f"0.01 grid (0.0, 0.01, ..., 1.0) and no grid value above it keeps "
                                f"--num_image={num_image} images of this class; use two decimals, e.g. 0.3")
            raise UserError(f"no threshold is possible: --max_prob={max_prob} must be above "
                            f"--min_threshold={min_threshold}")
        selected.append((chosen, total))
    return selected


def num_image_across_classes(selected, num_image: int) -> int:
    return sum(min(total, num_image) for _, total in selected)


def copies_per_class(selected, *, num_image: int, use_all: bool, upsample: bool) -> np.ndarray:
    """Upstream `filter_unlabel.py`, `get_keep_image_idx`: the expected number of copies of each eligible
    image, per class."""
    factors = []
    for _, total in selected:
        if use_all:
            x = 1.0
        elif total == 0:
            # Only reachable with --only_use_num_shards leaving this shard's images out of the totals.
            x = 1.0
        else:
            x = num_image / total
        factors.append(x if upsample else min(x, 1.0))
    return np.asarray(factors, np.float64)


def shard_rngs(seed: int, shard: int, task: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The random streams of one shard's selection: (choosing copies, shuffling the written records). Fixed by
    (seed, shard, task) alone, so a shard's result does not depend on which worker or which order runs it."""
    seeds = [int(seed), int(shard), int(task) + 1]
    return (np.random.default_rng(np.random.SeedSequence([*seeds, 0])),
            np.random.default_rng(np.random.SeedSequence([*seeds, 1])))


def select_copies(labels: np.ndarray, top_probs: np.ndarray, selected, *, num_image: int, max_prob: float,
                  use_all: bool, upsample: bool, rng: np.random.Generator) -> np.ndarray:
    """Upstream `filter_unlabel.py`, `get_keep_image_idx`: copies (0, 1, 2, ...) of every image of a shard,
    by stochastic rounding.

    Classes are visited in index order and each class's images by confidence, highest first (ties in input
    order); one uniform draw per eligible image in that order, so a seed fixes the result.
    """
    labels = np.asarray(labels, np.int64)
    probs = np.asarray(top_probs, np.float64)
    thresholds = np.asarray([t for t, _ in selected], np.float64)
    factors = copies_per_class(selected, num_image=num_image, use_all=use_all, upsample=upsample)
    copies = np.zeros(len(labels), np.int64)
    for c in np.unique(labels):
        members = np.nonzero(labels == c)[0]
        ordered = members[np.argsort(-probs[members], kind="stable")]
        eligible = ordered[(probs[ordered] >= thresholds[c]) & (probs[ordered] <= max_prob)]
        x = factors[c]
        whole = math.floor(x)
        copies[eligible] = whole + (rng.random(len(eligible)) < x - whole)
    return copies


def class_counts(labels: np.ndarray, copies: np.ndarray, num_classes: int) -> dict:
    """The stats file of upstream `filter_unlabel.py`, `main`: records written per class, classes with none omitted."""
    totals = np.bincount(np.asarray(labels, np.int64), weights=copies, minlength=num_classes)
    return {str(c): int(n) for c, n in enumerate(totals) if n > 0}


def final_stats(per_shard_counts) -> dict:
    """Upstream `filter_unlabel.py`, `read_stats`: final_stats.json from the per-shard stats (class -> count dicts)."""
    totals: dict[str, int] = {}
    for counts in per_shard_counts:
        for name, n in counts.items():
            totals[name] = totals.get(name, 0) + int(n)
    ordered = dict(sorted(totals.items(), key=lambda kv: int(kv[0])))
    pairs = sorted(ordered.items(), key=lambda kv: -kv[1])
    return {"cat_count": ordered, "cat_sorted_pairs": [[k, v] for k, v in pairs],
            "total_cnt": sum(ordered.values())}
