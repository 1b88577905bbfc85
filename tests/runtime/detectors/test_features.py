from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sas.runtime.detectors.features import FeatureSpace, min_sq_distances


def test_bucket_ids_depend_on_the_secret_key(digits) -> None:
    rows = digits.split.x_benign[:20]
    a = FeatureSpace(digits.baseline).signals(rows, None).buckets
    again = FeatureSpace(digits.baseline).signals(rows, None).buckets
    other = FeatureSpace(dataclasses.replace(digits.baseline, key=b"another key" * 3)).signals(rows, None).buckets
    assert a == again  # instances sharing the key agree (cross-instance near-duplicates)
    assert not set(a) & set(other)


def test_near_duplicates_are_close_and_distinct_digits_are_not(digits) -> None:
    space = FeatureSpace(digits.baseline)
    rng = np.random.default_rng(0)
    rows = digits.split.x_benign[:50]
    # nudge the pixels benign digits use (moving a never-used one is a range violation: out of distribution)
    live = digits.baseline.hi - digits.baseline.lo > 1.0
    nudged = rows + rng.uniform(-0.02, 0.02, rows.shape) * live
    a, b = space.signals(rows, None), space.signals(nudged, None)
    near = [min_sq_distances(b.sketches[i : i + 1], [a.sketches[i].tobytes()])[0] for i in range(50)]
    far = [min_sq_distances(a.sketches[i + 1 : i + 2], [a.sketches[i].tobytes()])[0] for i in range(49)]
    assert max(near) <= digits.baseline.close_threshold < np.median(far)
    same_bucket = sum(x == y for x, y in zip(a.buckets, b.buckets, strict=True))
    assert same_bucket >= 35  # LSH: a small move rarely crosses a (keyed, randomly offset) cell boundary
    assert len(set(a.buckets)) == 50


def test_hostile_rows_are_out_of_distribution_not_errors(digits) -> None:
    space = FeatureSpace(digits.baseline)
    rows = np.vstack([np.full(64, np.nan), np.full(64, 1e300), np.full(64, -50.0), digits.split.x_benign[0]])
    sig = space.signals(space.rows(rows), None)
    assert sig.ood[:3].all()
    with pytest.raises(ValueError):
        space.rows(np.zeros((2, 5)))


def test_margins_from_probabilities_and_labels_only(digits) -> None:
    space = FeatureSpace(digits.baseline)
    rows = digits.split.x_benign[:4]
    sig = space.signals(rows, np.array([[0.5, 0.49, 0.01], [0.9, 0.05, 0.05], [0.3, 0.3, 0.4], [1.0, 0.0, 0.0]]))
    assert sig.low is not None and sig.low.tolist() == [True, False, True, False]
    label_only = space.signals(rows, np.array([1, 2, 3, 4]))
    assert label_only.low is None and label_only.labels is not None


def test_single_row_fast_path_matches_the_batch_path(digits) -> None:
    space = FeatureSpace(digits.baseline)
    # rows far enough out that some sketch values leave int8 (clamped to ±127), or round to exactly -128
    far = digits.split.x_benign[:20] * np.linspace(2.0, 12.0, 20)[:, None]
    rows = np.vstack(
        [
            digits.split.x_benign[:40],
            far,
            np.full((1, 64), np.nan),
            np.full((1, 64), 1e300),
            np.full((1, 64), -1e300),
        ]
    )
    batch = space.signals(rows, None)
    assert (np.abs(batch.sketches[40:60]) == 127).any(), "the careful path is exercised"
    for i in range(rows.shape[0]):
        one = space.signals(rows[i : i + 1], None)
        assert one.buckets[0] == batch.buckets[i]
        assert one.sketches[0].tobytes() == batch.sketches[i].tobytes()
        assert bool(one.ood[0]) == bool(batch.ood[i])
