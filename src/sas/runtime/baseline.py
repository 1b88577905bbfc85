"""What benign traffic looks like for one model: the record the ML detectors load at cold start.

A baseline is one small ``.npz`` file written by ``sas baseline fit`` (numpy's own container, read with
``allow_pickle=False``, so loading it can never run code) holding arrays (mean, whitening matrix, feature
ranges, class prior) and one JSON string of scalars (thresholds, benign signal rates, alarm levels). It is
loaded once per instance; nothing here runs per request.

Why not pickle/joblib: the file ships inside the function package and is read on every cold start; a
format that cannot execute code on load is the only acceptable one for a security product. Why not plain
JSON: a 64×64 whitening matrix in JSON is ~80 KB of text and slow to parse; ``.npz`` is ~35 KB and loads in
well under a millisecond.

numpy is imported here at module level: this module is imported only when a model detector is built, and
the guarded model already imports numpy.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sas.errors import SasError

FORMAT = "sas-baseline/1"

Array = npt.NDArray[np.float64]


class BaselineError(SasError):
    """The baseline file is missing, malformed or from another format version."""


@dataclass(frozen=True)
class Signal:
    """One binary per-row signal: its benign rate ``p0`` (measured on held-out data) and attack rate ``p1``."""

    p0: float
    p1: float


@dataclass(frozen=True)
class Baseline:
    """Benign statistics and calibrated thresholds for one model's input space.

    ``whiten`` is the transposed inverse Cholesky factor of the (shrunk) covariance, so that
    ``(x - mean) @ whiten`` has identity covariance on benign data and its squared norm is the Mahalanobis
    distance². ``lo``/``hi`` are the benign feature ranges (widened by a margin); ``class_prior`` is the
    share of each predicted class on benign data (empty when the model's outputs were not given).
    """

    mean: Array
    whiten: Array
    lo: Array
    hi: Array
    class_prior: Array
    ood_threshold: float  # Mahalanobis distance² above which a row counts as out of distribution
    margin_threshold: float  # top-1 minus top-2 probability below which a row probes the boundary
    close_threshold: float  # squared sketch distance under which a row is "too close" to a recent query
    lsh_width: float  # cell width of the near-duplicate buckets, in whitened-projection units
    signals: dict[str, Signal] = field(default_factory=dict)  # ood, low, close, dup
    extraction_alarm: float = 10.0  # per-client log-likelihood ratio that raises an alert
    adversarial_alarm: float = 10.0
    block_factor: float = 2.0  # the alarm times this blocks (403) in enforce mode
    target_fpr: float = 0.01  # the per-client false-positive rate the alarms were calibrated for
    key: bytes = b""  # secret for keyed projections and bucket hashes (env SAS_DETECTOR_KEY overrides)
    n_fit: int = 0
    n_calibration: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.class_prior.shape[0])

    def save(self, path: str | os.PathLike[str]) -> None:
        scalars: dict[str, Any] = {"format": FORMAT}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                continue
            if f.name == "signals":
                value = {k: {"p0": s.p0, "p1": s.p1} for k, s in value.items()}
            elif f.name == "key":
                value = value.hex()
            scalars[f.name] = value
        target = Path(path)
        # np.savez appends .npz to names without it; write through a file object so the name is kept
        with target.open("wb") as fh:
            np.savez(
                fh,
                mean=self.mean,
                whiten=self.whiten,
                lo=self.lo,
                hi=self.hi,
                class_prior=self.class_prior,
                meta=np.array(json.dumps(scalars, sort_keys=True)),
            )


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read a baseline written by :meth:`Baseline.save` (never unpickles anything)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k], dtype=np.float64) for k in ("mean", "whiten", "lo", "hi", "class_prior")}
            meta = json.loads(str(data["meta"]))
    except FileNotFoundError as exc:
        raise BaselineError(f"baseline file not found: {path}") from exc
    except Exception as exc:
        # a damaged file fails deep inside zipfile and numpy, with many types: TokenError or TypeError from a
        # garbled .npy header, NotImplementedError for an unknown compression method
        raise BaselineError(f"cannot read baseline {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise BaselineError(f"{path} is not a {FORMAT} baseline")
    d = arrays["mean"].shape[0] if arrays["mean"].ndim == 1 else -1
    if d < 1 or arrays["whiten"].shape != (d, d) or arrays["lo"].shape != (d,) or arrays["hi"].shape != (d,):
        raise BaselineError(f"{path}: inconsistent array shapes")
    # a NaN or an infinity in a baseline disables the detectors that compare with it (every comparison is false)
    if not all(bool(np.isfinite(a).all()) for a in arrays.values()):
        raise BaselineError(f"{path}: the baseline holds NaN or infinite values")
    try:
        signals = {str(k): Signal(float(v["p0"]), float(v["p1"])) for k, v in meta.get("signals", {}).items()}
        baseline = Baseline(
            mean=arrays["mean"],
            whiten=arrays["whiten"],
            lo=arrays["lo"],
            hi=arrays["hi"],
            class_prior=arrays["class_prior"],
            ood_threshold=float(meta["ood_threshold"]),
            margin_threshold=float(meta["margin_threshold"]),
            close_threshold=float(meta["close_threshold"]),
            lsh_width=float(meta["lsh_width"]),
            signals=signals,
            extraction_alarm=float(meta["extraction_alarm"]),
            adversarial_alarm=float(meta["adversarial_alarm"]),
            block_factor=float(meta.get("block_factor", 2.0)),
            target_fpr=float(meta.get("target_fpr", 0.01)),
            key=bytes.fromhex(str(meta.get("key", ""))),
            n_fit=int(meta.get("n_fit", 0)),
            n_calibration=int(meta.get("n_calibration", 0)),
            notes=dict(meta.get("notes", {})),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BaselineError(f"{path}: malformed baseline metadata ({exc})") from exc
    scalars = [baseline.ood_threshold, baseline.margin_threshold, baseline.close_threshold, baseline.lsh_width]
    scalars += [baseline.extraction_alarm, baseline.adversarial_alarm, baseline.block_factor, baseline.target_fpr]
    scalars += [p for signal in signals.values() for p in (signal.p0, signal.p1)]
    if any(math.isnan(x) for x in scalars):  # infinity is a threshold never crossed; NaN makes every test false
        raise BaselineError(f"{path}: malformed baseline metadata (NaN)")
    return baseline


def as_baseline(value: Any) -> Baseline:
    """A :class:`Baseline` from itself or from a path."""
    if isinstance(value, Baseline):
        return value
    if isinstance(value, (str, os.PathLike)):
        return load_baseline(value)
    raise BaselineError(f"expected a Baseline or a baseline file path, got {type(value).__name__}")


# --- fitting (CLI and bench only; never on the request path) ---------------------------------------------


def _quantile(values: Array, q: float) -> float:
    finite = values[np.isfinite(values)]
    return float(np.quantile(finite, q)) if finite.size else float("inf")


def fit_baseline(
    x: Any,
    probs: Any = None,
    *,
    target_fpr: float = 0.01,
    row_rate: float = 0.01,
    margin_rate: float = 0.03,
    close_rate: float = 0.02,
    retry_rate: float = 0.02,
    lsh_width: float = 0.5,
    shrinkage: float = 0.05,
    sessions: int = 200,
    max_session: int = 120,
    block_factor: float = 2.0,
    key: bytes | None = None,
    seed: int = 0,
) -> Baseline:
    """Learn benign statistics from ``x`` (and the model's probabilities on it) and calibrate every threshold.

    Half the rows (shuffled) fit the statistics (mean, shrunk covariance, ranges); the other half, held out,
    sets the per-row thresholds at the given benign rates (``row_rate`` out of distribution, ``margin_rate``
    low margin, ``close_rate`` too close to a recent query), measures each signal's benign rate ``p0`` by
    replaying simulated benign clients (sessions of up to ``max_session`` distinct held-out rows, a
    ``retry_rate`` share of them sent twice) through the
    real :class:`~sas.runtime.detectors.model_guard.ModelGuard`, and puts each alarm where at most
    ``target_fpr / 2`` of those clients would ever be flagged, with a 1.5 margin (never below twice Wald's
    ``log(1/target_fpr)``).
    """
    from sas.runtime.detectors.features import FeatureSpace, min_sq_distances

    data = np.asarray(x, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] < 40:
        raise BaselineError("baseline data must be a 2-D array with at least 40 rows")
    if not np.isfinite(data).all():
        raise BaselineError("baseline data contains NaN or infinite values")
    p = None if probs is None else np.asarray(probs, dtype=np.float64)
    if p is not None and (p.ndim != 2 or p.shape[0] != data.shape[0] or p.shape[1] < 2):
        raise BaselineError("probabilities must be an (n_rows, n_classes) array matching the data")
    rng = np.random.default_rng(seed)
    order = rng.permutation(data.shape[0])
    half = data.shape[0] // 2
    fit_idx, cal_idx = order[:half], order[half:]
    fit, cal = data[fit_idx], data[cal_idx]
    d = data.shape[1]

    mean = fit.mean(axis=0)
    cov = np.atleast_2d(np.cov(fit, rowvar=False))
    # Shrink the correlation, not the covariance: features on large scales (areas in the thousands next to
    # ratios near 0.1) would otherwise swamp the identity term and erase the small ones. A constant feature
    # gets a hundredth of the median scale (per feature, never the mean: one feature in the thousands would
    # flatten all the others); the range check already catches movement where there was none.
    std = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    moving = std[std > 0]
    std = np.maximum(std, 0.01 * (float(np.median(moving)) if moving.size else 1.0))
    corr = cov / np.outer(std, std)
    corr = (1.0 - shrinkage) * corr + shrinkage * np.eye(d)
    cov = corr * np.outer(std, std)
    whiten = np.linalg.inv(np.linalg.cholesky(cov)).T
    lo_raw, hi_raw = fit.min(axis=0), fit.max(axis=0)
    span = hi_raw - lo_raw
    # ranges catch gross violations only (Mahalanobis handles subtle ones): a quarter span of slack
    tol = 0.25 * span + 1e-6 * (np.abs(hi_raw) + 1.0)
    lo, hi = lo_raw - tol, hi_raw + tol

    u = (cal - mean) @ whiten
    d2 = np.einsum("ij,ij->i", u, u)
    ood_threshold = _quantile(d2, 1.0 - row_rate)
    margin_threshold = 0.0
    prior = np.zeros(0)
    cal_probs = None
    if p is not None:
        cal_probs = p[cal_idx]
        top2 = -np.partition(-cal_probs, 1, axis=1)[:, :2]
        margin_threshold = _quantile(top2[:, 0] - top2[:, 1], margin_rate)
        counts = np.bincount(np.argmax(cal_probs, axis=1), minlength=p.shape[1]).astype(np.float64)
        prior = (counts + 0.5) / (counts.sum() + 0.5 * counts.size)
    secret = key or os.urandom(32)
    provisional = Baseline(mean, whiten, lo, hi, prior, ood_threshold, margin_threshold, 0.0, lsh_width, key=secret)

    # closeness: each held-out row against up to 32 earlier rows of a simulated benign session
    space = FeatureSpace(provisional)
    sketches = space.signals(cal, None).sketches
    dists: list[float] = []
    for _ in range(max(4, sessions // 20)):
        perm = rng.permutation(cal.shape[0])[:max_session]
        for i in range(1, perm.size):
            ring = [sketches[j].tobytes() for j in perm[max(0, i - 32) : i]]
            dists.append(float(min_sq_distances(sketches[perm[i] : perm[i] + 1], ring)[0]))
    close_threshold = _quantile(np.asarray(dists), close_rate)
    provisional = Baseline(
        mean, whiten, lo, hi, prior, ood_threshold, margin_threshold, close_threshold, lsh_width, key=secret
    )

    session_rows = []
    for _ in range(sessions):
        rows = rng.permutation(cal.shape[0])[: int(rng.integers(10, max_session + 1))]
        # benign clients retry: an exact repeat is a near-duplicate too, and must be part of "benign"
        repeat = rng.random(rows.size) < retry_rate
        session_rows.append(np.repeat(rows, np.where(repeat, 2, 1)))
    hits = _replay(provisional, cal, cal_probs, session_rows, rates=True)
    signals = {}
    for name, (k, n) in hits.items():
        p0 = (k + 1.0) / (n + 2.0)  # Laplace: a signal never seen on benign data still has a small rate
        signals[name] = Signal(p0, min(0.9, max(0.3, 8.0 * p0)))
    calibrated = Baseline(
        mean,
        whiten,
        lo,
        hi,
        prior,
        ood_threshold,
        margin_threshold,
        close_threshold,
        lsh_width,
        signals=signals,
        extraction_alarm=1e9,
        adversarial_alarm=1e9,
        key=secret,
    )
    peaks = _replay(calibrated, cal, cal_probs, session_rows, rates=False)
    # Wald's boundary for the target rate, doubled: the signals are not independent, and a client's
    # history is longer than the simulated sessions
    floor_alarm = 2.0 * float(np.log(1.0 / target_fpr))
    alarms = {}
    for name, values in peaks.items():
        arr = np.asarray(values[0], dtype=np.float64)
        alarms[name] = max(floor_alarm, 1.5 * _quantile(arr, 1.0 - target_fpr / 2.0))
    notes = {
        "rows": int(data.shape[0]),
        "features": d,
        "classes": int(prior.size),
        "sessions": sessions,
        "benign_peak_extraction_p99": _quantile(np.asarray(peaks["extraction"][0]), 0.99),
        "benign_peak_adversarial_p99": _quantile(np.asarray(peaks["adversarial"][0]), 0.99),
    }
    return Baseline(
        mean,
        whiten,
        lo,
        hi,
        prior,
        ood_threshold,
        margin_threshold,
        close_threshold,
        lsh_width,
        signals=signals,
        extraction_alarm=alarms["extraction"],
        adversarial_alarm=alarms["adversarial"],
        block_factor=block_factor,
        target_fpr=target_fpr,
        key=secret,
        n_fit=int(fit.shape[0]),
        n_calibration=int(cal.shape[0]),
        notes=notes,
    )


def _replay(
    baseline: Baseline, rows: Array, probs: Array | None, sessions: list[Any], *, rates: bool
) -> dict[str, Any]:
    """Run simulated benign clients through the real guard (memory state, one row per request)."""
    from sas.runtime.detectors.model_guard import GuardSettings, ModelGuard
    from sas.runtime.state.memory import MemoryState

    settings = GuardSettings(client_burst=1e12, global_burst=1e12, sybil_min_rows=1e18)
    guard = ModelGuard(baseline, MemoryState(), settings)
    totals = {s: [0.0, 0.0] for s in ("ood", "low", "close", "dup")}
    peaks: dict[str, list[list[float]]] = {"extraction": [[]], "adversarial": [[]]}
    now = 0.0
    for number, session in enumerate(sessions):
        client = f"benign-{number}"
        ext_peak = adv_peak = -1e18
        last = None
        for i in session:
            now += 1.0
            out = None if probs is None else probs[i : i + 1]
            last = guard.observe(client, rows[i : i + 1], out, now)
            ext_peak = max(ext_peak, last.extraction_risk)
            adv_peak = max(adv_peak, last.adversarial_risk)
        peaks["extraction"][0].append(ext_peak)
        peaks["adversarial"][0].append(adv_peak)
        if last is not None and rates:
            c = last.counts
            for name, n_name in (("ood", "n"), ("low", "m"), ("close", "nc"), ("dup", "nd")):
                totals[name][0] += c[name]
                totals[name][1] += c[n_name]
    if rates:
        return {k: (v[0], v[1]) for k, v in totals.items()}
    return peaks
