"""Victim models for the bench: real scikit-learn classifiers trained at run time (seconds on 2 cores).

Digits: multinomial logistic regression on raw pixels (~96% accuracy). Breast cancer: standardisation +
logistic regression, a linear model, so that Tramèr-style equation solving applies exactly.
"""

from __future__ import annotations

from typing import Any

from sas.bench.datasets import Split


def train_victim(split: Split, seed: int = 0) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, random_state=seed))
    model.fit(split.x_train, split.y_train)
    return model
