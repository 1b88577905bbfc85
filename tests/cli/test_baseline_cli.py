"""`sas baseline fit` end to end: files in, a baseline the runtime loads out; bad input is a one-line error."""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from sas.cli import main
from sas.runtime.baseline import load_baseline


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray, Pipeline]:
    x, y = load_wine(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x[::2], y[::2])
    return tmp_path_factory.mktemp("wine"), x[1::2], y[1::2], model


def test_fit_from_npy_with_probabilities_writes_a_loadable_baseline(wine, capsys: pytest.CaptureFixture[str]) -> None:
    folder, x, _, model = wine
    np.save(folder / "x.npy", x)
    np.save(folder / "p.npy", model.predict_proba(x))
    out = folder / "b.npz"
    assert (
        main(
            [
                "baseline",
                "fit",
                "--sessions",
                "40",
                "--data",
                str(folder / "x.npy"),
                "--probs",
                str(folder / "p.npy"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    b = load_baseline(out)
    assert b.n_features == 13 and b.n_classes == 3 and b.margin_threshold > 0
    assert "written to" in capsys.readouterr().out


def test_fit_from_csv_with_header_and_labels_only(wine) -> None:
    folder, x, y, _ = wine
    header = ",".join(f"f{i}" for i in range(13))
    np.savetxt(folder / "x.csv", x, delimiter=",", header=header, comments="")
    np.savetxt(folder / "y.csv", y, fmt="%d")
    out = folder / "labels.npz"
    args = [
        "baseline",
        "fit",
        "--sessions",
        "40",
        "--data",
        str(folder / "x.csv"),
        "--labels",
        str(folder / "y.csv"),
        "--out",
        str(out),
    ]
    assert main(args) == 0
    b = load_baseline(out)
    assert b.n_classes == 3 and b.margin_threshold == 0.0  # labels give the class prior, never margins


def test_a_model_file_is_loaded_only_when_trusted(wine, capsys: pytest.CaptureFixture[str]) -> None:
    folder, x, _, model = wine
    np.save(folder / "x.npy", x)
    joblib.dump(model, folder / "m.joblib")
    base = ["baseline", "fit", "--sessions", "40", "--data", str(folder / "x.npy"), "--model", str(folder / "m.joblib")]
    assert main([*base, "--out", str(folder / "m.npz")]) == 2
    assert "--trust-model" in capsys.readouterr().err
    assert main([*base, "--trust-model", "--out", str(folder / "m.npz")]) == 0
    assert "runs code" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "content"), [("x.txt", b"1,2"), ("x.npy", b"garbage"), ("x.csv", b"a,b\n1,zz\n"), ("none.npy", None)]
)
def test_bad_inputs_are_one_line_errors(tmp_path: Path, name: str, content: bytes | None, capsys) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    assert main(["baseline", "fit", "--sessions", "40", "--data", str(path), "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sas: error:") and err.count("\n") == 1


def test_a_table_of_text_or_huge_labels_are_one_line_errors(wine, capsys) -> None:  # type: ignore[no-untyped-def]
    """Found by fuzzing: an .npy of strings raised ValueError out of the float conversion, and a label of 10**9
    asked np.eye for a 10**9-square matrix."""
    folder, x, y, _ = wine
    np.save(folder / "text.npy", np.array([["a"] * x.shape[1]] * len(x)))
    np.save(folder / "data.npy", x)
    for bad in (y * 0 + 10**9, np.full(len(y), 0.5), np.full(len(y), np.nan)):
        np.save(folder / "labels.npy", bad)
        args = ["baseline", "fit", "--sessions", "40", "--data", str(folder / "data.npy")]
        assert main([*args, "--labels", str(folder / "labels.npy"), "--out", str(folder / "o.npz")]) == 2
        assert "--labels must hold one integer label" in capsys.readouterr().err
    args = ["baseline", "fit", "--sessions", "40", "--data", str(folder / "text.npy"), "--out", str(folder / "o.npz")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("sas: error:") and "numbers" in err and err.count("\n") == 1
