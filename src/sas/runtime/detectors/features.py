"""Per-row signals of one request, computed once and shared by the extraction, adversarial and abuse detectors.

For each row of the model's input (numpy in; one row or a batch):

* **out of distribution**: Mahalanobis distance² on whitened features (``(x - mean) @ whiten``), or any
  feature outside its benign range. Cheap (one small matmul), calibrated to a benign rate by the baseline.
* **low margin**: top-1 minus top-2 probability under the baseline's threshold: decision-based attacks and
  JBDA-style augmentation live near the decision boundary. Label-only models give no margin (the signal is
  then absent, not guessed).
* **sketch**: a keyed random projection of the whitened row to :data:`SKETCH_DIMS` dimensions, quantised to
  int8 (8 bytes). The per-client ring of recent sketches gives the PRADA-style "too close to a recent query"
  test without storing queries.
* **bucket**: a coarser quantisation of the same projection, with keyed random offsets, hashed with keyed
  BLAKE2b: a near-duplicate (LSH) bucket id. The projection matrix, the offsets and the hash all derive from
  a secret key, so an attacker cannot predict which of their queries collide (Blacklight's point), and ids
  from many instances agree because they share the key.

Why numpy and not scikit-learn or a hashing library: the whole computation is two matmuls and a handful of
vector operations on ≤ a few hundred floats; BLAKE2b with a key is in :mod:`hashlib`.
"""

from __future__ import annotations

import functools
import hashlib
import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import numpy as np
import numpy.typing as npt

from sas.runtime.baseline import Baseline

SKETCH_DIMS = 8  # FeatureSpace.one() is written out for 8 values
SKETCH_SCALE = 16.0  # int8 sketch units per whitened standard deviation (range ±8 sd)
Z_LIMIT = 1e12  # projected values are clamped here (and non-finite ones zeroed) before quantisation
MAX_ROWS = 4096  # rows per request looked at individually; larger batches are subsampled (kept bounded)


@dataclass(frozen=True)
class RowSignals:
    """What the detectors need from one request's rows (all arrays have one entry per row)."""

    n: int
    d2: npt.NDArray[np.float64]
    ood: npt.NDArray[np.bool_]
    margin: npt.NDArray[np.float64] | None
    low: npt.NDArray[np.bool_] | None
    labels: npt.NDArray[np.int64] | None
    sketches: npt.NDArray[np.int8]
    buckets: list[str]


class OneRow(NamedTuple):
    """The signals of a single row as plain Python values (the hot path of a one-row request)."""

    d2: float
    ood: bool
    margin: float | None  # None: the model gave no probabilities
    low: bool | None
    label: int | None
    sketch: bytes
    bucket: str


_floor = math.floor


# tuple.__new__ on the class: what OneRow(...) does, without its Python-level __new__ (hot path)
_one_row = cast(Callable[[tuple[Any, ...]], OneRow], functools.partial(tuple.__new__, OneRow))


def _keyed_rng(key: bytes, purpose: bytes) -> np.random.Generator:
    seed = hashlib.blake2b(purpose, key=key[:64], digest_size=16).digest()
    return np.random.default_rng(int.from_bytes(seed, "big"))


class FeatureSpace:
    """The baseline's geometry plus the secret projection: turns a request into :class:`RowSignals`."""

    def __init__(self, baseline: Baseline, key: bytes | None = None) -> None:
        self.baseline = baseline
        self.key = key or baseline.key or b"sas-default-key"
        d = baseline.n_features
        self.d = d
        self.one_row = (1, d)  # the shape of the usual request's inputs
        self.mean = np.ascontiguousarray(baseline.mean)
        self.whiten = np.ascontiguousarray(baseline.whiten)
        self.lo = baseline.lo
        self.hi = baseline.hi
        proj = _keyed_rng(self.key, b"projection").standard_normal((d, SKETCH_DIMS)) / np.sqrt(d)
        self.projection = np.ascontiguousarray(proj)
        self.offsets = _keyed_rng(self.key, b"offsets").uniform(0.0, 1.0, SKETCH_DIMS)
        self.offset_list = [float(o) for o in self.offsets]
        self.projection_scaled = np.ascontiguousarray(proj * SKETCH_SCALE)
        self.cell_scale = 1.0 / (SKETCH_SCALE * max(baseline.lsh_width, 1e-6))
        # One matrix for every row: whitened features, the sketch projection and the bucket-cell coordinates
        # (the projection already scaled to cells) in one product. The cells of a row whose sketch values
        # are finite and within Z_LIMIT come from their own columns, in the batch and single-row paths alike
        # (the test pins that both give the same bytes).
        ws = self.whiten @ self.projection_scaled
        self.combined = np.ascontiguousarray(np.hstack([self.whiten, ws, ws * self.cell_scale]))
        self.mid = (baseline.hi + baseline.lo) / 2.0
        self.half = (baseline.hi - baseline.lo) / 2.0
        self.ood_threshold = baseline.ood_threshold
        self.margin_threshold = baseline.margin_threshold
        self._hash_key = self.key[:64]
        # the keyed hash with its key block absorbed: a copy per row hashes only the row (the same digest as
        # blake2b(row, key=..., digest_size=8), at half the cost of keying a new one)
        self._keyed_hash = hashlib.blake2b(key=self._hash_key, digest_size=8)
        self._cells = struct.Struct(f"<{SKETCH_DIMS}q")
        self._sketch = struct.Struct(f"{SKETCH_DIMS}b")
        # what one() reads, in one attribute (eleven attribute loads cost more than the unpacking)
        self._hot = (
            d,
            self.mean,
            self.combined,
            self.ood_threshold,
            self.mid,
            self.half,
            tuple(self.offset_list),
            self._sketch.pack,
            self._cells.pack,
            self._keyed_hash.copy,
            self.margin_threshold,
        )

    def rows(self, inputs: Any) -> npt.NDArray[np.float64]:
        """The request's inputs as a ``(n, d)`` float array; ``ValueError`` when they are not ``d`` features."""
        if type(inputs) is np.ndarray and inputs.dtype == np.float64 and inputs.shape == (1, self.d):
            return inputs  # the usual request: one float row, nothing to convert
        try:
            x = np.asarray(inputs, dtype=np.float64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"inputs are not numeric rows: {exc}") from exc
        if x.ndim == 0 or x.size == 0:
            raise ValueError("inputs are not rows")
        if x.ndim == 1:
            x = x.reshape(1, -1)
        elif x.ndim > 2:
            x = x.reshape(x.shape[0], -1)
        if x.shape[-1] != self.d:
            raise ValueError(f"expected {self.d} features, got {x.shape[-1]}")
        if x.shape[0] > MAX_ROWS:
            x = x[:: -(-x.shape[0] // MAX_ROWS)]
        return x

    def signals(self, x: npt.NDArray[np.float64], outputs: Any) -> RowSignals:
        if x.shape[0] == 1:
            return self._one(x, outputs)
        d, k = self.d, SKETCH_DIMS
        uz = (x - self.mean) @ self.combined
        u = uz[:, :d]
        d2 = np.einsum("ij,ij->i", u, u)
        # NaN compares false: "not within" makes a non-finite row out of distribution
        ood = ~(d2 <= self.ood_threshold) | (np.abs(x - self.mid) > self.half).any(axis=1)
        raw = uz[:, d : d + k]  # in sketch units
        z = np.clip(np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0), -Z_LIMIT, Z_LIMIT)
        sketches = np.clip(z, -127, 127).round().astype(np.int8)
        scaled = np.where(np.abs(raw) <= Z_LIMIT, uz[:, d + k :], z * self.cell_scale)
        cells = np.floor(scaled + self.offsets).astype("<i8")  # the bytes one() packs
        key = self._hash_key
        buckets = [hashlib.blake2b(row.tobytes(), key=key, digest_size=8).hexdigest() for row in cells]
        margin, low, labels = self._margins(outputs, x.shape[0])
        return RowSignals(x.shape[0], d2, ood, margin, low, labels, sketches, buckets)

    def _one(self, x: npt.NDArray[np.float64], outputs: Any) -> RowSignals:
        """:meth:`one` wrapped as :class:`RowSignals` (the batch-shaped record tests and callers compare)."""
        r = self.one(x[0], outputs)
        margin = None if r.margin is None else np.array([r.margin])
        low = None if r.low is None else np.array([r.low])
        labels = None if r.label is None else np.array([r.label], dtype=np.int64)
        sketches = np.frombuffer(r.sketch, dtype=np.int8).reshape(1, SKETCH_DIMS)
        return RowSignals(1, np.array([r.d2]), np.array([r.ood]), margin, low, labels, sketches, [r.bucket])

    def one(self, v: npt.NDArray[np.float64], outputs: Any) -> OneRow:
        """One row (the usual request): one matrix product, then plain Python for the 16 projected values.

        numpy's per-call cost (~0.3-1 us each) dominates at this size: the row makes seven numpy calls,
        eleven when the distance leaves the range test to decide; the projected values are quantised as
        plain floats (written out for the eight sketch dimensions) and packed with :mod:`struct`. Same
        values as the batch path (tested).
        """
        (d, mean, combined, ood_threshold, mid, half, offsets, pack_sketch, pack_cells, new_hash, margin_threshold) = (
            self._hot
        )
        uz = (v - mean).dot(combined)
        u = uz[:d]
        d2 = float(u.dot(u))
        # NaN compares false: "not within" makes a non-finite row out of distribution; the range test is
        # skipped when the distance already says so. A True in the comparison is a byte 1 in its buffer:
        # searching its bytes costs less than count_nonzero (a Python wrapper) or .any() (three times that)
        ood = not d2 <= ood_threshold or 1 in (abs(v - mid) > half).tobytes()
        zc = uz[d:].tolist()  # 8 sketch values, then 8 cell coordinates
        z0, z1, z2, z3, z4, z5, z6, z7, c0, c1, c2, c3, c4, c5, c6, c7 = zc
        o0, o1, o2, o3, o4, o5, o6, o7 = offsets
        floor = _floor
        try:
            # written out for SKETCH_DIMS = 8 (a map() over the values costs twice as much); round() raises on
            # NaN/inf and struct on values beyond int8 or int64: those rows take the careful path
            sketch: bytes | None = pack_sketch(
                round(z0), round(z1), round(z2), round(z3), round(z4), round(z5), round(z6), round(z7)
            )
            cells = pack_cells(
                floor(c0 + o0),
                floor(c1 + o1),
                floor(c2 + o2),
                floor(c3 + o3),
                floor(c4 + o4),
                floor(c5 + o5),
                floor(c6 + o6),
                floor(c7 + o7),
            )
        except (ValueError, OverflowError, struct.error):
            sketch = None
        # -128 is outside the sketch's symmetric range; searched for as an integer: ``b"\x80" in`` would first
        # try its operand as one, raising and formatting a TypeError inside on every request
        if sketch is None or 0x80 in sketch:
            sketch, cells = self._careful(zc)
        h = new_hash()
        h.update(cells)
        bucket = h.hexdigest()
        margin: float | None = None
        low: bool | None = None
        label: int | None = None
        if outputs is not None:
            shape: tuple[int, ...] = outputs.shape if type(outputs) is np.ndarray else ()
            if len(shape) == 2 and shape[0] >= 1 and 2 <= shape[1] <= 64 and outputs.dtype.kind in "fiub":
                # one row, few classes (the common request): plain floats beat five numpy calls
                row = outputs.tolist()[0] if shape[0] == 1 else outputs[0].tolist()
                ranked = sorted(row)
                top = ranked[-1]
                label = row.index(top)  # the first maximum, as argmax
                margin = float(top - ranked[-2])
                low = margin < margin_threshold
            else:
                m, lw, lb = self._margins(outputs, 1)
                if m is not None and lw is not None:
                    margin, low = float(m[0]), bool(lw[0])
                if lb is not None:
                    label = int(lb[0])
        return _one_row((d2, ood, margin, low, label, sketch, bucket))

    def _careful(self, zc: list[float]) -> tuple[bytes, bytes]:
        """Sketch and cell bytes of a row with non-finite or huge projections, clamped as the batch path does."""
        sketch = bytearray(SKETCH_DIMS)
        cells = [0] * SKETCH_DIMS
        cs = self.cell_scale
        offsets = self.offset_list
        for j in range(SKETCH_DIMS):
            raw = zc[j]
            if -Z_LIMIT <= raw <= Z_LIMIT:
                t, scaled = raw, zc[SKETCH_DIMS + j]
            else:
                t = math.copysign(Z_LIMIT, raw) if math.isfinite(raw) else 0.0
                scaled = t * cs
            sketch[j] = (127 if t > 127 else -127 if t < -127 else round(t)) & 0xFF
            cells[j] = math.floor(scaled + offsets[j])
        return bytes(sketch), self._cells.pack(*cells)

    def _margins(
        self, outputs: Any, n: int
    ) -> tuple[npt.NDArray[np.float64] | None, npt.NDArray[np.bool_] | None, npt.NDArray[np.int64] | None]:
        if outputs is None:
            return None, None, None
        try:
            out = np.asarray(outputs)
        except (TypeError, ValueError):
            return None, None, None
        if out.dtype.kind not in "fiub" or out.size == 0:
            return None, None, None
        if out.ndim == 2 and out.shape[0] >= n and out.shape[1] >= 2:
            if n == 1 and out.shape[1] <= 64:
                # one row, few classes (the common request): plain floats beat five numpy calls
                row = out[0].tolist()
                best = max(range(len(row)), key=row.__getitem__)
                top = row[best]
                row[best] = -math.inf
                gap = float(top - max(row))
                return np.array([gap]), np.array([gap < self.margin_threshold]), np.array([best], dtype=np.int64)
            p = out[:n].astype(np.float64)
            if n == 1:
                top = np.sort(p[0])
                margin = np.array([top[-1] - top[-2]])
            else:
                top2 = -np.partition(-p, 1, axis=1)[:, :2]
                margin = top2[:, 0] - top2[:, 1]
            labels = np.argmax(p, axis=1).astype(np.int64)
            return margin, margin < self.margin_threshold, labels
        if out.ndim == 1 and out.shape[0] >= n and out.dtype.kind in "iub":
            return None, None, out[:n].astype(np.int64)  # label-only model: no margin, labels still count
        return None, None, None


def min_sq_distances(sketches: npt.NDArray[np.int8], ring: Sequence[bytes]) -> npt.NDArray[np.float64]:
    """Each row's smallest squared sketch distance to the ring (oldest first) and to the earlier rows of its batch."""
    n = sketches.shape[0]
    joined = b"".join(ring)
    if len(joined) != SKETCH_DIMS * len(ring):  # a foreign or corrupt entry: keep only well-formed ones
        joined = b"".join(s for s in ring if len(s) == SKETCH_DIMS)
    cur = sketches.astype(np.float64)
    if joined:
        ref = np.frombuffer(joined, dtype=np.int8).reshape(-1, SKETCH_DIMS).astype(np.float64)
        if n == 1:
            diff = ref - cur[0]
            return np.array([np.einsum("ij,ij->i", diff, diff).min()])
        diff = cur[:, None, :] - ref[None, :, :]
        best: npt.NDArray[np.float64] = np.einsum("ijk,ijk->ij", diff, diff).min(axis=1)
    else:
        best = np.full(n, np.inf)
    if n > 1:
        # within one batch, row i is compared with rows < i (a batch of near-duplicates is one probe sequence)
        for i in range(1, min(n, 256)):
            diff = cur[:i] - cur[i]
            best[i] = min(best[i], float(np.einsum("ij,ij->i", diff, diff).min()))
    return best
