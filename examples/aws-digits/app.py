"""Digits classifier on AWS Lambda: the model loads once per cold start, each request is one 8x8 image."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import joblib
import numpy as np

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

MODEL_PATH = Path(os.environ.get("MODEL_PATH", Path(__file__).parent / "model" / "model.joblib"))
# Our own artifact, built by build_examples.py and checked by `sas scan` before deploy.
MODEL = joblib.load(MODEL_PATH)
N_FEATURES = 64


def _bad_request(message: str) -> dict[str, Any]:
    return {"statusCode": 400, "headers": {"content-type": "application/json"}, "body": json.dumps({"error": message})}


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    try:
        body = json.loads(event.get("body") or "{}")
        features = np.asarray(body["features"], dtype=np.float64).reshape(-1, N_FEATURES)
    except (ValueError, KeyError, TypeError):
        return _bad_request("expected {'features': [64 numbers] or [[64 numbers], ...]}")
    if not np.isfinite(features).all() or features.min() < 0 or features.max() > 16:
        return _bad_request("features must be finite pixel intensities in [0, 16]")
    labels = MODEL.predict(features).tolist()
    LOG.info("predicted %d rows", len(labels))
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps({"labels": labels})}
