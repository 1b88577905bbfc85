"""Bundled data for the detection bench: scikit-learn's digits and breast-cancer sets, and "other" data.

Both victim datasets ship inside scikit-learn (no download). The natural-data (KnockoffNets-style) attacker
needs data from another distribution in the same input space: for digits, noise-free synthetic pen strokes
rendered on the same 8×8, 0–16 grid; for the tabular model, the wine set's columns tiled onto 30 features
and rescaled to the victim's public feature ranges (an attacker knows plausible ranges, not the joint law).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Split:
    """One task: a model's training rows, the defender's baseline rows, held-out benign traffic."""

    name: str
    x_train: Array
    y_train: npt.NDArray[np.int64]
    x_baseline: Array
    x_benign: Array
    y_benign: npt.NDArray[np.int64]
    lo: Array  # public feature ranges (what an attacker may know)
    hi: Array
    image: bool


def load_task(name: str, seed: int = 0) -> Split:
    from sklearn.datasets import load_breast_cancer, load_digits

    if name == "digits":
        bunch = load_digits()
        image = True
    elif name == "breast_cancer":
        bunch = load_breast_cancer()
        image = False
    else:
        raise ValueError(f"unknown task {name!r}")
    x = np.asarray(bunch.data, dtype=np.float64)
    y = np.asarray(bunch.target, dtype=np.int64)
    order = np.random.default_rng(seed).permutation(x.shape[0])
    x, y = x[order], y[order]
    a, b = x.shape[0] // 2, (3 * x.shape[0]) // 4
    lo, hi = x.min(axis=0), x.max(axis=0)
    if image:
        lo, hi = np.zeros(x.shape[1]), np.full(x.shape[1], 16.0)
    return Split(name, x[:a], y[:a], x[a:b], x[b:], y[b:], lo, hi, image)


def strokes(n: int, rng: np.random.Generator) -> Array:
    """Synthetic 8×8 pen strokes (lines and arcs, anti-aliased, 0–16): natural-looking, not digits."""
    out = np.zeros((n, 8, 8))
    yy, xx = np.mgrid[0:8, 0:8]
    for i in range(n):
        img = np.zeros((8, 8))
        for _ in range(int(rng.integers(1, 4))):
            if rng.random() < 0.5:
                p0, p1 = rng.uniform(0.5, 6.5, 2), rng.uniform(0.5, 6.5, 2)
                t = np.linspace(0.0, 1.0, 24)[:, None]
                pts = p0 + t * (p1 - p0)
            else:
                c, r = rng.uniform(2.5, 4.5, 2), rng.uniform(1.5, 3.0)
                a0 = rng.uniform(0, 2 * np.pi)
                ang = a0 + np.linspace(0, rng.uniform(np.pi, 2 * np.pi), 24)
                pts = np.stack([c[0] + r * np.cos(ang), c[1] + r * np.sin(ang)], axis=1)
            for px, py in pts:
                img += np.exp(-((xx - px) ** 2 + (yy - py) ** 2) / 0.6)
        out[i] = np.clip(np.rint(img / max(img.max(), 1e-9) * 16.0), 0, 16)
    return out.reshape(n, 64)


def foreign_tabular(n: int, lo: Array, hi: Array, rng: np.random.Generator) -> Array:
    """Wine rows tiled onto the victim's feature count, each column min-max mapped to the public range."""
    from sklearn.datasets import load_wine

    wine = np.asarray(load_wine().data, dtype=np.float64)
    d = lo.shape[0]
    cols = np.resize(np.arange(wine.shape[1]), d)
    src = wine[:, cols]
    src = (src - src.min(axis=0)) / np.maximum(src.max(axis=0) - src.min(axis=0), 1e-9)
    rows = src[rng.integers(0, src.shape[0], n)]
    return np.asarray(lo + rows * (hi - lo), dtype=np.float64)
