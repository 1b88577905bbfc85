"""``sas baseline fit``: learn what benign traffic looks like and calibrate the ML detectors' thresholds.

The model (``--model``) is the user's own file: loading it with joblib/pickle runs code from it, so it is
loaded only with ``--trust-model`` and after saying so on stderr. ``--probs`` (precomputed probabilities,
``.npy``/``.csv``) avoids loading the model here at all. Parquet is read with pyarrow if installed, else
DuckDB (the ``forensics`` extra); neither is needed for ``.npy``/``.csv``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sas.errors import SasError


def register(sub: Any) -> None:
    baseline = sub.add_parser("baseline", help="fit the benign baseline the runtime ML detectors load")
    bsub = baseline.add_subparsers(dest="baseline_command", metavar="ACTION")
    fit = bsub.add_parser("fit", help="learn feature statistics and calibrate thresholds on held-out rows")
    fit.add_argument("--data", required=True, help="benign inputs: .npy, .csv or .parquet (rows × features)")
    fit.add_argument("--labels", help="true labels (.npy/.csv), used for the class prior without a model")
    fit.add_argument("--model", help="the model file (joblib/pickle, with predict_proba); needs --trust-model")
    fit.add_argument("--trust-model", action="store_true", help="allow loading --model (runs code from it)")
    fit.add_argument("--probs", help="the model's probabilities on --data (.npy/.csv) instead of --model")
    fit.add_argument("--target-fpr", type=float, default=0.01, help="per-client false-positive target (0.01)")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--sessions", type=int, default=200, help="simulated benign clients for calibration (200)")
    fit.add_argument("--out", required=True, help="baseline file to write (.npz)")
    fit.set_defaults(handler=run_fit)
    baseline.set_defaults(handler=lambda args: _usage(baseline))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


MAX_CLASSES = 10_000


def read_table(path: str) -> Any:
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise SasError(f"file not found: {path}")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(p, allow_pickle=False)
        if suffix == ".csv":
            return _read_csv(p)
        if suffix == ".parquet":
            return _read_parquet(p)
    except SasError:
        raise
    except Exception as exc:  # a damaged file fails inside numpy or the parquet reader with many types
        raise SasError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
    raise SasError(f"unsupported file type {suffix or '(none)'} for {path} (expected .npy, .csv or .parquet)")


def read_numbers(path: str) -> Any:
    """:func:`read_table` as float64; a table of text (or of anything else) is a one-line error."""
    import numpy as np

    table = read_table(path)
    try:
        return np.asarray(table, dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise SasError(f"{path} does not hold numbers only: {exc}") from exc


def _read_csv(p: Path) -> Any:
    import numpy as np

    with p.open() as fh:
        first = fh.readline()
    cells = [c.strip() for c in first.split(",")]
    header = any(_not_number(c) for c in cells)
    return np.loadtxt(p, delimiter=",", skiprows=1 if header else 0, ndmin=2 if len(cells) > 1 else 1)


def _not_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return True
    return False


def _read_parquet(p: Path) -> Any:
    import numpy as np

    try:
        import pyarrow.parquet as pq  # type: ignore[import-not-found, unused-ignore]

        table = pq.read_table(p)
        return np.column_stack([table.column(i).to_numpy() for i in range(table.num_columns)])
    except ImportError:
        pass
    try:
        import duckdb
    except ImportError as exc:
        raise SasError(
            "reading parquet needs pyarrow or duckdb (pip install 'serverless-ai-shield[forensics]')"
        ) from exc
    relation = duckdb.sql("SELECT * FROM read_parquet(?)", params=[str(p)])
    if relation is None:
        raise SasError(f"cannot read {p}: empty parquet result")
    columns = relation.fetchnumpy()
    return np.column_stack([np.asarray(v, dtype=np.float64) for v in columns.values()])


def run_fit(args: argparse.Namespace) -> int:
    import numpy as np

    from sas.runtime.baseline import fit_baseline

    x = read_numbers(args.data)
    if x.ndim == 1:
        x = x.reshape(-1, 1)
    probs = None
    if args.probs:
        probs = read_numbers(args.probs)
    elif args.model:
        if not args.trust_model:
            raise SasError("--model is loaded with joblib/pickle, which runs code from the file: add --trust-model")
        print(f"sas: loading {args.model} with joblib (this runs code from the file)", file=sys.stderr)
        try:
            import joblib

            model = joblib.load(args.model)
            probs = np.asarray(model.predict_proba(x), dtype=np.float64)
        except Exception as exc:  # the user's model: any failure becomes a one-line error
            raise SasError(f"cannot use model {args.model}: {type(exc).__name__}: {exc}") from exc
    elif args.labels:
        labels = read_numbers(args.labels).reshape(-1)
        # np.eye(max + 1) below: a label of a billion would ask for a billion-square matrix
        whole = labels.size and bool(np.isfinite(labels).all()) and bool((labels == np.round(labels)).all())
        if labels.shape[0] != x.shape[0] or not whole or labels.min() < 0 or labels.max() >= MAX_CLASSES:
            raise SasError(f"--labels must hold one integer label in [0, {MAX_CLASSES}) per data row")
        y = labels.astype(np.int64)
        probs = np.eye(int(y.max()) + 1)[y] * 0.98 + 0.01  # the class prior only; no margins without a model
    baseline = fit_baseline(x, probs, target_fpr=args.target_fpr, seed=args.seed, sessions=max(20, args.sessions))
    if args.labels and not (args.probs or args.model):
        baseline = _without_margin(baseline)
    baseline.save(args.out)
    s = baseline.signals
    print(
        f"baseline: {baseline.n_fit} rows fitted, {baseline.n_calibration} held out; {baseline.n_features} features, "
        f"{baseline.n_classes} classes; benign rates ood={s['ood'].p0:.3f} low-margin={s['low'].p0:.3f} "
        f"close={s['close'].p0:.3f} near-dup={s['dup'].p0:.3f}; alarms extraction={baseline.extraction_alarm:.1f} "
        f"probing={baseline.adversarial_alarm:.1f} (target client FPR {baseline.target_fpr}); written to {args.out}"
    )
    return 0


def _without_margin(baseline: Any) -> Any:
    import dataclasses

    return dataclasses.replace(baseline, margin_threshold=0.0)
