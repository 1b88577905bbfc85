"""Ordinary artifacts must not be flagged: scikit-learn estimators and pipelines, numpy arrays, plain data."""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import io
import pickle
import uuid
import warnings

import joblib
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.decomposition import PCA
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

X, Y = make_classification(n_samples=80, n_features=6, random_state=0)


def _estimators() -> list[object]:
    warnings.filterwarnings("ignore")
    fitted: list[object] = [
        make_pipeline(StandardScaler(), LogisticRegression()).fit(X, Y),
        Pipeline([("pca", PCA(3)), ("sel", SelectKBest(f_classif, k=2)), ("svc", SVC(probability=True))]).fit(X, Y),
        RandomForestClassifier(n_estimators=5, random_state=0).fit(X, Y),
        GradientBoostingClassifier(n_estimators=5).fit(X, Y),
        HistGradientBoostingClassifier(max_iter=5).fit(X, Y),
        KNeighborsClassifier().fit(X, Y),
        DecisionTreeClassifier().fit(X, Y),
        GaussianNB().fit(X, Y),
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=20).fit(X, Y),
        KMeans(n_clusters=2, n_init=1).fit(X),
    ]
    texts = ["a cat", "a dog", "the bird", "a cat and a dog"]
    fitted.append(make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, [0, 1, 0, 1]))
    cat = np.array([["a", 1.0], ["b", 2.0], ["a", 3.0]], dtype=object)
    fitted.append(ColumnTransformer([("oh", OneHotEncoder(), [0]), ("sc", StandardScaler(), [1])]).fit(cat))
    return fitted


ESTIMATORS = _estimators()
IDS = [type(e).__name__ + str(i) for i, e in enumerate(ESTIMATORS)]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_sklearn_pickle_has_no_finding(analyse, estimator: object, protocol: int) -> None:
    report = analyse(pickle.dumps(estimator, protocol=protocol))
    assert report.hits == [] and report.error is None, [h.message for h in report.hits]


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=IDS)
def test_sklearn_joblib_has_no_finding(analyse, estimator: object) -> None:
    buf = io.BytesIO()
    joblib.dump(estimator, buf)
    report = analyse(buf.getvalue())
    assert report.joblib
    assert report.hits == [] and report.error is None, (report.error, [h.message for h in report.hits])


def test_sklearn_files_through_the_engine(scan_file) -> None:
    pipe = ESTIMATORS[1]
    data = pickle.dumps(pipe)
    result = scan_file("models/pipeline.pkl", data)
    assert result.findings == ()
    assert [c.format for c in result.components] == ["pickle"]
    assert result.components[0].sha256 and result.components[0].size == len(data)


ARRAYS = [
    np.arange(10),
    np.zeros((3, 4), dtype=np.float32, order="F"),
    np.array(["a", "bc"]),
    np.array([b"x", b"yz"]),
    np.array([True, False]),
    np.array(["2020-01-01"], dtype="datetime64[ns]"),
    np.zeros(3, dtype=[("a", "<f4"), ("b", "<i8")]),
    np.zeros((2, 2), dtype=("f4", (2,))),
    np.float64(3.5),
    np.array(7),
    np.zeros((0, 5)),
    np.arange(6, dtype=">i4"),
    np.array([1 + 2j]),
    np.ma.masked_array([1, 2], mask=[0, 1]),
]


@pytest.mark.parametrize("array", ARRAYS, ids=[str(a.dtype) + str(np.shape(a)) for a in ARRAYS])
def test_numpy_arrays_pickle_and_joblib(analyse, array: object) -> None:
    for protocol in (2, 4, 5):
        report = analyse(pickle.dumps(array, protocol=protocol))
        assert report.hits == [] and report.error is None, (protocol, report.error, [h.message for h in report.hits])
    buf = io.BytesIO()
    joblib.dump({"a": array, "after": [1, 2, 3]}, buf)
    report = analyse(buf.getvalue())
    assert report.hits == [] and report.error is None, (report.error, [h.message for h in report.hits])


def test_numpy_random_state_and_generator(analyse) -> None:
    for obj in (np.random.RandomState(0), np.random.default_rng(0), np.random.SeedSequence(1)):
        report = analyse(pickle.dumps(obj))
        assert report.hits == [], [h.message for h in report.hits]


def test_scipy_and_scorers(analyse) -> None:
    import scipy.sparse
    import scipy.stats
    from sklearn.metrics import f1_score, make_scorer
    from sklearn.model_selection import GridSearchCV
    from sklearn.preprocessing import FunctionTransformer

    values = [
        scipy.sparse.csr_matrix(np.eye(3)),
        scipy.stats.norm(0, 1),
        make_scorer(f1_score),
        GridSearchCV(LogisticRegression(), {"C": [1.0, 2.0]}, cv=2, scoring=make_scorer(f1_score)).fit(X, Y),
        FunctionTransformer(np.log1p).fit(np.abs(X)),
        np.log1p,
    ]
    for value in values:
        report = analyse(pickle.dumps(value))
        assert report.hits == [], [h.message for h in report.hits]


def test_standard_library_values(analyse) -> None:
    value = {
        "od": collections.OrderedDict(a=1),
        "dd": collections.defaultdict(list),
        "dq": collections.deque([1]),
        "c": collections.Counter("abc"),
        "dt": datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC),
        "d": datetime.date(2024, 1, 2),
        "td": datetime.timedelta(1),
        "dec": decimal.Decimal("1.5"),
        "fr": fractions.Fraction(1, 3),
        "u": uuid.UUID(int=5),
        "s": {1, 2},
        "fs": frozenset({3}),
        "b": b"\x00" * 300,
        "ba": bytearray(b"xy"),
        "cx": 1 + 2j,
        "r": range(3),
        "sl": slice(1, 2),
    }
    for protocol in range(6):
        report = analyse(pickle.dumps(value, protocol=protocol))
        assert report.hits == [] and report.error is None, (protocol, [h.message for h in report.hits])
