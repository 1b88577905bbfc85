"""Adversarial Robustness Toolbox attacks in the bench, through a small adapter (the ``assess`` extra).

ART sees the defended endpoint as a ``BlackBoxClassifier`` whose ``predict`` sends one row per query
through the same oracle as our own attacks, so a 403 or the budget end stops ART mid-run (its exception
propagates out of ``generate``/``extract``; the attacker's result is then what it had). CopycatCNN and
KnockoffNets call ``fit(x, y, nb_epochs=..., batch_size=...)`` on the thieved classifier, which
scikit-learn's ``fit`` refuses; the adapter drops those keywords (FIELD-NOTES: they crash without it).
ART is imported only here, only when installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sas.bench.attacks import ATTACKS, Attack
from sas.bench.datasets import Array, foreign_tabular, strokes


class _ArtAttack(Attack):
    def _classifier(self) -> Any:
        from art.estimators.classification import BlackBoxClassifier

        n_classes = int(self.victim.predict_proba(self.split.x_benign[:1]).shape[1])

        def predict(x: Array) -> Array:
            return np.vstack([self.ask(row) for row in np.asarray(x, dtype=np.float64)])

        return BlackBoxClassifier(
            predict,
            input_shape=(self.split.lo.shape[0],),
            nb_classes=n_classes,
            clip_values=(float(self.split.lo.min()), float(self.split.hi.max())),
        )


class ArtHopSkipJump(_ArtAttack):
    name = "art-hopskipjump"
    kind = "evasion"
    adv: Array | None = None

    def steps(self) -> None:
        from art.attacks.evasion import HopSkipJump

        self._start()
        attack = HopSkipJump(self._classifier(), max_iter=20, max_eval=200, init_eval=20, init_size=20, verbose=False)
        self.adv = attack.generate(self.x0[None])[0]

    def _start(self) -> None:
        benign = self.split.x_benign
        i = int(self.rng.integers(0, benign.shape[0]))
        self.x0 = benign[i]
        self.source = int(self.victim.predict(benign[i : i + 1])[0])
        self.adv = None

    def result(self) -> dict[str, float]:
        adv = getattr(self, "adv", None)
        if adv is None:
            return {"evasion_success": 0.0, "finished": 0.0}
        fooled = int(self.victim.predict(adv[None])[0]) != self.source
        ref = float(np.median(np.linalg.norm(self.split.x_benign - self.x0, axis=1)))
        ratio = float(np.linalg.norm(adv - self.x0) / max(ref, 1e-9))
        return {"evasion_success": float(fooled and ratio <= 0.5), "distance_ratio": ratio, "finished": 1.0}


class ArtBoundary(ArtHopSkipJump):
    name = "art-boundary"

    def steps(self) -> None:
        from art.attacks.evasion import BoundaryAttack

        self._start()
        attack = BoundaryAttack(self._classifier(), targeted=False, max_iter=200, num_trial=10, verbose=False)
        self.adv = attack.generate(self.x0[None])[0]


def _thieved(victim: Any) -> Any:
    from art.estimators.classification.scikitlearn import ScikitlearnClassifier
    from sklearn.linear_model import LogisticRegression

    # ART's SklearnClassifier is a factory function; the class behind it is ScikitlearnClassifier
    class FitAdapter(ScikitlearnClassifier):  # type: ignore[misc]
        def fit(self, x: Any, y: Any, **kwargs: Any) -> None:  # drops nb_epochs/batch_size
            super().fit(x, y)

    return FitAdapter(LogisticRegression(max_iter=300))


class ArtKnockoff(_ArtAttack):
    name = "art-knockoffnets"

    def steps(self) -> None:
        from art.attacks.extraction import KnockoffNets

        data = self._natural(self._budget)
        attack = KnockoffNets(
            self._classifier(),
            batch_size_fit=16,
            batch_size_query=1,
            nb_epochs=1,
            nb_stolen=self._budget,
            sampling_strategy="random",
            verbose=False,
        )
        attack.extract(data, thieved_classifier=_thieved(self.victim))

    def _natural(self, n: int) -> Array:
        if self.split.image:
            return strokes(n, self.rng)
        return foreign_tabular(n, self.split.lo, self.split.hi, self.rng)


class ArtCopycat(ArtKnockoff):
    name = "art-copycat"

    def steps(self) -> None:
        from art.attacks.extraction import CopycatCNN

        data = self._natural(self._budget)
        attack = CopycatCNN(
            self._classifier(), batch_size_fit=16, batch_size_query=1, nb_epochs=1, nb_stolen=self._budget
        )
        attack.extract(data, thieved_classifier=_thieved(self.victim))


ART_ATTACKS = (ArtHopSkipJump, ArtBoundary, ArtKnockoff, ArtCopycat)


def register_art() -> list[str]:
    """Add the ART attacks to the bench's table; returns their names."""
    for cls in ART_ATTACKS:
        ATTACKS[cls.name] = cls
    return [cls.name for cls in ART_ATTACKS]
