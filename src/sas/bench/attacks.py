"""Our own implementations of the bench's attacks, each driving an oracle one row per query.

Extraction (the attacker's result is the fidelity of the model they end up with: agreement with the victim
on held-out benign rows): JBDA-style Jacobian augmentation (Papernot et al.), uniform random queries,
Tramèr-style equation solving (exact for linear/logistic models: log-odds are linear in the input),
KnockoffNets-style natural data from another distribution. Evasion (result: an adversarial example within
half the starting distance): a boundary walk in the manner of HopSkipJump/Boundary attack, decision-only.
And a denial-of-wallet flood. Every attack can be *blinded* (each query gets a small random transform, the
known counter to near-duplicate detection).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from sas.bench.datasets import Array, Split, foreign_tabular, strokes

Oracle = Callable[[Array], Array]  # one row -> the model's answer (probabilities), raises Blocked


class Blocked(Exception):
    """The defended endpoint refused the attacker (403), or kept throttling it."""


class _Stop(Exception):
    pass


@dataclass
class AttackResult:
    queries: int
    stopped: bool
    metrics: dict[str, float] = field(default_factory=dict)


def surrogate_fidelity(xs: list[Array], labels: list[int], victim: Any, test: Array) -> float:
    """Train the attacker's substitute on what it saw; agreement with the victim on benign held-out rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    truth = victim.predict(test)
    if len(xs) < 2 or len(set(labels)) < 2:
        guess = labels[0] if labels else 0
        return float(np.mean(truth == guess))
    sub = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    sub.fit(np.asarray(xs), np.asarray(labels))
    return float(np.mean(sub.predict(test) == truth))


class Attack:
    name = "attack"
    kind = "extraction"  # or "evasion", "abuse"
    rows_per_query = 1

    def __init__(self, split: Split, victim: Any, seed: int = 0, blinding: float = 0.0) -> None:
        self.split = split
        self.victim = victim
        self.rng = np.random.default_rng(seed)
        self.blinding = blinding
        self.xs: list[Array] = []
        self.answers: list[Array] = []
        self._oracle: Oracle | None = None
        self._budget = 0

    def execute(self, oracle: Oracle, budget: int) -> AttackResult:
        self._oracle, self._budget = oracle, budget
        stopped = False
        try:
            self.steps()
        except _Stop:
            pass
        except Blocked:
            stopped = True
        return AttackResult(len(self.xs), stopped, self.result())

    def ask(self, x: Array) -> Array:
        if len(self.xs) >= self._budget or self._oracle is None:
            raise _Stop
        x = self._blind(np.asarray(x, dtype=np.float64))
        answer = np.asarray(self._oracle(x), dtype=np.float64).reshape(-1)
        self.xs.append(x)
        self.answers.append(answer)
        return answer

    def _blind(self, x: Array) -> Array:
        if self.blinding <= 0:
            return x
        span = self.split.hi - self.split.lo
        out = x + self.rng.uniform(-self.blinding, self.blinding, x.shape) * span
        if self.split.image and self.rng.random() < 0.5:
            img = out.reshape(8, 8)
            out = np.roll(img, int(self.rng.choice([-1, 1])), axis=int(self.rng.integers(0, 2))).reshape(-1)
        return np.clip(out, self.split.lo, self.split.hi)

    def labels(self) -> list[int]:
        return [int(np.argmax(a)) for a in self.answers]

    def steps(self) -> None:
        raise NotImplementedError

    def result(self) -> dict[str, float]:
        return {"fidelity": surrogate_fidelity(self.xs, self.labels(), self.victim, self.split.x_benign)}


class UniformQueries(Attack):
    name = "uniform-random"

    def steps(self) -> None:
        while True:
            self.ask(self.rng.uniform(self.split.lo, self.split.hi))


class NaturalData(Attack):
    """KnockoffNets-style: real-looking data from another distribution, labelled by the victim."""

    name = "knockoff-natural"

    def steps(self) -> None:
        while True:
            pool = (
                strokes(50, self.rng)
                if self.split.image
                else foreign_tabular(50, self.split.lo, self.split.hi, self.rng)
            )
            for row in pool:
                self.ask(row)


class JacobianAugmentation(Attack):
    """JBDA: a few natural seeds, then rounds of x + λ·sign(∂ substitute score / ∂x)."""

    name = "jbda"

    def steps(self) -> None:
        from sklearn.linear_model import LogisticRegression

        span = self.split.hi - self.split.lo
        step = 0.1 * span
        benign = self.split.x_benign
        seeds = benign[self.rng.choice(benign.shape[0], 10, replace=False)]
        frontier = list(seeds)
        for x in frontier:
            self.ask(x)
        while True:
            labels = self.labels()
            if len(set(labels)) < 2:
                coef = self.rng.standard_normal((1, span.shape[0]))
            else:
                scale = np.maximum(np.std(np.asarray(self.xs), axis=0), 1e-6)
                sub = LogisticRegression(max_iter=300).fit(np.asarray(self.xs) / scale, labels)
                coef = sub.coef_ / scale
            new = []
            for x in frontier:
                y = int(np.argmax(self.victim_label_cache(x)))
                if coef.shape[0] == 1:
                    grad = coef[0] if y == 1 else -coef[0]
                else:
                    classes = list(sub.classes_)
                    grad = coef[classes.index(y)] if y in classes else coef[0]
                new.append(np.clip(x + step * np.sign(grad), self.split.lo, self.split.hi))
            frontier = []
            for x in new:
                self.ask(x)
                frontier.append(x)
            frontier = frontier[-50:]  # Papernot's reservoir keeps the augmentation set bounded

    def victim_label_cache(self, x: Array) -> Array:
        # the label the attacker already received for x (the closest recorded query)
        dists = [float(np.sum((q - x) ** 2)) for q in self.xs[-200:]]
        return self.answers[-200:][int(np.argmin(dists))]


class EquationSolving(Attack):
    """Tramèr et al.: log-odds of a logistic model are linear in x; d+1 answers solve for the weights."""

    name = "equation-solving"

    def steps(self) -> None:
        d = self.split.lo.shape[0]
        for _ in range(d + 1 + 4):
            self.ask(self.rng.uniform(self.split.lo, self.split.hi))

    def result(self) -> dict[str, float]:
        if len(self.xs) < 2:
            return {"fidelity": 0.0}
        x = np.asarray(self.xs)
        p = np.clip(np.asarray(self.answers), 1e-12, 1.0)
        logits = np.log(p[:, 1:]) - np.log(p[:, :1])
        design = np.hstack([x, np.ones((x.shape[0], 1))])
        coef, *_ = np.linalg.lstsq(design, logits, rcond=None)
        test = self.split.x_benign
        scores = np.hstack([np.zeros((test.shape[0], 1)), np.hstack([test, np.ones((test.shape[0], 1))]) @ coef])
        pred = np.argmax(scores, axis=1)
        return {"fidelity": float(np.mean(pred == self.victim.predict(test)))}


class BoundaryWalk(Attack):
    """Decision-only evasion: find the boundary towards another class, then walk along it towards x0."""

    name = "boundary-walk"
    kind = "evasion"

    def steps(self) -> None:
        benign = self.split.x_benign
        truth = self.victim.predict(benign)
        i = int(self.rng.integers(0, benign.shape[0]))
        self.x0, self.source = benign[i], int(truth[i])
        others = np.flatnonzero(truth != self.source)
        target = benign[int(self.rng.choice(others))]
        self.start = float(np.linalg.norm(target - self.x0))
        self.best = target
        self._search(self.x0, target)
        span = self.split.hi - self.split.lo
        sigma = 0.05
        while True:
            cand = self.best + self.rng.standard_normal(self.x0.shape) * sigma * span
            cand = cand + 0.1 * (self.x0 - cand)
            cand = np.clip(cand, self.split.lo, self.split.hi)
            if self._adversarial(cand) and np.linalg.norm(cand - self.x0) < np.linalg.norm(self.best - self.x0):
                self.best = cand
                sigma = min(0.2, sigma * 1.2)
            else:
                sigma = max(0.005, sigma * 0.97)
            if len(self.xs) % 25 == 0:
                self._search(self.x0, self.best)

    def _adversarial(self, x: Array) -> bool:
        return int(np.argmax(self.ask(x))) != self.source

    def _search(self, inside: Array, outside: Array) -> None:
        lo_t, hi_t = 0.0, 1.0
        for _ in range(8):
            mid = (lo_t + hi_t) / 2
            if self._adversarial(inside + mid * (outside - inside)):
                hi_t = mid
            else:
                lo_t = mid
        self.best = inside + hi_t * (outside - inside)

    def result(self) -> dict[str, float]:
        if not hasattr(self, "x0"):
            return {"evasion_success": 0.0, "distance_ratio": 1.0}
        ratio = float(np.linalg.norm(self.best - self.x0) / max(self.start, 1e-9))
        fooled = int(self.victim.predict(self.best[None])[0]) != self.source
        return {"evasion_success": float(fooled and ratio <= 0.5), "distance_ratio": ratio}


class Flood(Attack):
    """Denial of wallet: benign-looking rows in large batches, as fast as the endpoint answers."""

    name = "dow-flood"
    kind = "abuse"
    rows_per_query = 50

    def steps(self) -> None:
        benign = self.split.x_benign
        while True:  # distinct benign rows until the pool runs out: volume is the only thing wrong here
            order = self.rng.permutation(benign.shape[0])
            for start in range(0, order.size - self.rows_per_query + 1, self.rows_per_query):
                self.ask(benign[order[start : start + self.rows_per_query]])

    def result(self) -> dict[str, float]:
        return {"rows_served": float(sum(np.atleast_2d(x).shape[0] for x in self.xs))}


ATTACKS: dict[str, type[Attack]] = {
    a.name: a for a in (JacobianAugmentation, UniformQueries, EquationSolving, NaturalData, BoundaryWalk, Flood)
}


def as_rows(x: npt.ArrayLike) -> Array:
    arr = np.asarray(x, dtype=np.float64)
    return arr.reshape(1, -1) if arr.ndim == 1 else arr
