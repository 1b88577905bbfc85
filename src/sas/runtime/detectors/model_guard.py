"""The per-request assessment the ML detectors share: one feature pass, one state update, calibrated risks.

Per request the guard computes the rows' signals once (:mod:`sas.runtime.detectors.features`), makes
exactly one :meth:`~sas.runtime.state.StateBackend.update` (counters, near-duplicate buckets, sketches and
both token buckets in one atomic call, one round trip on Redis), and turns the client's counters into
sequential tests:

* For each binary signal ``s`` (out of distribution, low margin, too close to a recent query, near-duplicate
  bucket) with benign rate ``p0`` and attack rate ``p1`` from the baseline, the client's ``k`` hits in ``n``
  rows give the log-likelihood ratio ``k·log(p1/p0) + (n−k)·log((1−p1)/(1−p0))`` (Wald's SPRT statistic),
  floored at ``-floor`` so that one strong signal is not cancelled by the drift of the others.
* The predicted-label histogram against the benign class prior adds a BIC-penalised G statistic (half of it:
  a log-likelihood ratio), and query volume beyond ``expected_queries`` adds a linear term.
* Extraction risk = OOD + low margin + closeness + labels + volume; adversarial-probing risk = near-duplicate
  + closeness + low margin. Each crosses an alarm calibrated by ``sas baseline fit`` on simulated benign
  clients; ``block_factor`` times the alarm blocks.

Counters merge by addition, so the test reads the same whether a client's queries hit one instance or
eight sharing Redis. "Close" and "near-duplicate" compare a request with the client's rings, so the state
backend counts them inside the same atomic update (``Observation.close_within``/``count_dups``): exact
however many instances the client's queries are spread over.

Sybil splitting: global counters carry exponentially decayed sums (increments scaled by ``e^{λ(t−t0)}``,
so they stay additive; rebased every :data:`EPOCH` seconds). When the decayed global rate of a signal is
``sybil_ratio`` times its benign rate with a z-score above ``sybil_z``, every client's alarm is lowered by
``sybil_factor``: the attack spread over many ids raises the prior on each of them. (Out-of-distribution and
low-margin rates only: closeness is per client by nature.)
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import numpy as np

from sas.runtime.baseline import Baseline, Signal
from sas.runtime.context import RequestContext
from sas.runtime.detectors.features import FeatureSpace, OneRow, RowSignals
from sas.runtime.state.base import Observation, StateBackend, TokenBucket

SIGNALS = ("ood", "low", "close", "dup")
EPOCH = 7 * 86_400.0  # decayed global counters restart every week (keeps e^{λt} far from overflow)
MAX_CLIENTS = 20_000  # clients whose last level this instance remembers
MAX_LABELS = 32  # label counters per client (classes beyond hash into these)
MAX_ROW_STATE = 64  # sketches/buckets sent per request (bounds a huge batch's update)
_SYBIL_TESTS = (("ood", "ood", "n"), ("low", "low", "m"))  # (signal, hits counter, rows counter)
_LABEL_NAMES = tuple(f"y{i}" for i in range(MAX_LABELS))
_ZEROS = itertools.repeat(0.0)  # the default of every .get() in a map()
_LLR_NAMES = ("llr_ood", "llr_low", "llr_close", "llr_dup", "llr_labels", "llr_volume")
COUNT_NAMES = ("n", "ood", "m", "low", "nc", "close", "nd", "dup", *_LLR_NAMES)  # Assessment.statistics
REQUEST_NAMES = ("rows", "ood", "low", "dup", "max_d2", "min_margin")  # Assessment.figures


@dataclass(frozen=True)
class GuardSettings:
    """Rates and weights a deployment may tune (``[runtime.model]`` in sas.toml)."""

    client_rate: float = 20.0  # cost units per second per client (one row costs ``row_cost``)
    client_burst: float = 400.0
    global_rate: float = 5_000.0
    global_burst: float = 50_000.0
    suspect_rate: float = 0.5  # refill rate of a client the detectors already suspect
    suspect_burst: float = 10.0
    row_cost: float = 1.0
    expected_queries: float = 20_000.0  # rows per client within the state TTL that benign use stays under
    label_weight: float = 0.5
    sybil_half_life: float = 3_600.0
    sybil_ratio: float = 3.0
    sybil_z: float = 6.0
    sybil_min_rows: float = 200.0
    sybil_factor: float = 0.35
    level_memory: float = 300.0  # seconds an instance remembers a client's level without asking the store


class Assessment(NamedTuple):
    """The shared verdict material for one request.

    A named tuple rather than a frozen dataclass: one is built per request on the detectors' hot path, and
    a frozen dataclass of twelve fields costs ~1.2 us to construct (a tuple a quarter of that). For the same
    reason the client's counters and the request's figures are kept as plain tuples (``statistics``,
    ``figures``); :attr:`counts` and :attr:`request` name them, on demand (most requests never ask).
    """

    client: str
    rows: int
    extraction_risk: float
    adversarial_risk: float
    extraction_level: int  # 0 allow, 1 suspicious (alert, degrade, throttle), 2 block
    adversarial_level: int
    client_allowed: bool = True
    global_allowed: bool = True
    sybil: tuple[str, ...] = ()
    degraded: bool = False
    statistics: tuple[float, ...] = ()  # the client's counters and the tests' statistics, in COUNT_NAMES order
    figures: tuple[float, ...] = ()  # this request's, in REQUEST_NAMES order (no min_margin: no probabilities)
    # ``counts`` and ``request`` rounded for the ledger (see :meth:`ModelGuard.ledger_counts`), made by the
    # tests only when a level is raised, so that a flagged request pays for it once and a benign one never
    ledger: tuple[dict[str, float], dict[str, float]] | None = None

    @property
    def counts(self) -> dict[str, float]:
        """The client's counters (rows, hits per signal) and the log-likelihood ratios, raw floats."""
        return dict(zip(COUNT_NAMES, self.statistics, strict=False))

    @property
    def request(self) -> dict[str, float]:
        """This request's rows, out-of-distribution, low-margin and duplicate rows, max distance², min margin."""
        return dict(zip(REQUEST_NAMES, self.figures, strict=False))


# tuple.__new__ on the class: what Assessment(...) does, without its Python-level __new__ (hot path)
_assessment = cast(Callable[[tuple[Any, ...]], Assessment], functools.partial(tuple.__new__, Assessment))
_F64 = np.dtype(np.float64)
_floor = math.floor

# No signal's benign rate is trusted below this: an exact retry of a request is a near-duplicate too, and
# held-out data cannot show every benign habit.
MIN_P0 = 0.002


def round3(value: float) -> float:
    """``value`` to three decimals, half up, for the ledger: ``round(value, 3)`` in all but exact ties, at a
    third of the cost (``round`` with digits goes through a decimal conversion; a detection rounds ten)."""
    return math.floor(value * 1000.0 + 0.5) / 1000.0 if -1e15 < value < 1e15 else value


def _ledger_request(figures: tuple[float, ...]) -> dict[str, float]:
    """The request's figures for the ledger: the distance and the margin rounded (the rest are row counts)."""
    rounded = {
        "rows": figures[0],
        "ood": figures[1],
        "low": figures[2],
        "dup": figures[3],
        "max_d2": round3(figures[4]),
    }
    if len(figures) > 5:
        rounded["min_margin"] = round3(figures[5])
    return rounded


def _ledger(statistics: tuple[float, ...], figures: tuple[float, ...]) -> tuple[dict[str, float], dict[str, float]]:
    """:attr:`Assessment.ledger` for an assessment that did not raise a level (the tests make the others)."""
    rounded = dict(zip(COUNT_NAMES, statistics, strict=False))
    for name in _LLR_NAMES:
        if name in rounded:
            rounded[name] = round3(rounded[name])
    return rounded, _ledger_request(figures)


def _llr_terms(sig: Signal) -> tuple[float, float]:
    p0 = min(max(sig.p0, MIN_P0), 0.5)
    p1 = min(max(sig.p1, p0 * 1.5), 0.95)
    return math.log(p1 / p0), math.log((1.0 - p1) / (1.0 - p0))


class ModelGuard:
    """Feature space + state backend + calibrated tests; one instance per guarded model."""

    def __init__(
        self,
        baseline: Baseline,
        state: StateBackend,
        settings: GuardSettings | None = None,
        *,
        key: bytes | None = None,
        clock: Any = time.time,
    ) -> None:
        self.baseline = baseline
        self.state = state
        self.settings = settings or GuardSettings()
        self.space = FeatureSpace(baseline, key)
        self.clock = clock
        default = Signal(0.01, 0.3)
        self.terms = {s: _llr_terms(baseline.signals.get(s, default)) for s in SIGNALS}
        # (log(p1/p0), log((1-p1)/(1-p0))) per test, in the order _judge reads them
        self._terms = tuple(self.terms[k] for k in ("ood", "low", "close", "dup"))
        # (extraction alarm, its block level, adversarial alarm, its block level), then lowered for Sybil
        bf, sf = baseline.block_factor, self.settings.sybil_factor
        ext, adv = baseline.extraction_alarm, baseline.adversarial_alarm
        self._thresholds = (ext, ext * bf, adv, adv * bf)
        self._sybil_thresholds = (ext * sf, ext * sf * bf, adv * sf, adv * sf * bf)
        self.p0 = {s: min(max(baseline.signals.get(s, default).p0, MIN_P0), 0.5) for s in SIGNALS}
        self.floor = max(baseline.extraction_alarm, baseline.adversarial_alarm)
        self.decay = math.log(2.0) / self.settings.sybil_half_life
        prior = np.asarray(baseline.class_prior, dtype=np.float64)
        if prior.size:
            prior = np.maximum(prior, 1e-3)
            prior = prior / prior.sum()
        self.prior = prior
        k = min(prior.size, MAX_LABELS)
        head = prior[:k] / prior[:k].sum() if k else prior
        self.prior_list = [float(v) for v in head]
        self._log_prior = [math.log(v) for v in self.prior_list]
        self.label_names = _LABEL_NAMES[:k]  # the very strings the counters are stored under
        # half the histogram's degrees of freedom (BIC penalty per log n); 0 turns the label term off
        self._label_dof = (k - 1) / 2.0 if k >= 2 and self.settings.label_weight > 0 else 0.0
        # client -> (its label counts as last judged here, their sum of k·log(k/p)): see _label_term
        self._label_memo: dict[str, tuple[list[float], float]] = {}
        # client -> (level, until): the last level this instance saw (read it through known_level())
        self.levels: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._epoch = -1
        self._global_names: tuple[str, str, str, str] = ("", "", "", "")  # n, ood, m, low @ this epoch
        # (request id, inputs, assessment) of the request assessed last: the detectors after the first read
        # it directly (a call to assess() costs more than the check)
        self.memo: tuple[str, Any, Assessment | None] | None = None
        self._sybil_epoch = -1
        self._sybil_tests: tuple[tuple[str, str, str, float, float], ...] = ()
        s = self.settings
        self._bucket = TokenBucket(s.client_rate, s.client_burst)
        self._suspect_bucket = TokenBucket(s.suspect_rate, s.suspect_burst)
        self._global_bucket = TokenBucket(s.global_rate, s.global_burst)

    # --- entry points ---------------------------------------------------------------------------------
    def assess(self, ctx: RequestContext | None, inputs: Any, outputs: Any) -> Assessment | None:
        """The request's assessment, computed once however many detectors ask (``None``: not model rows)."""
        # Keyed by the request and its inputs, not the outputs: the Shield may hand later detectors a
        # degraded copy of the outputs. The memo holds the inputs, so their id cannot be reused meanwhile.
        request_id = ctx.request_id if ctx is not None else ""
        memo = self.memo
        if memo is not None and memo[1] is inputs and memo[0] == request_id:
            return memo[2]
        client = ctx.client_id if ctx is not None and ctx.client_id else "anonymous"
        space = self.space
        result: Assessment | None
        try:
            if type(inputs) is np.ndarray and inputs.dtype is _F64 and inputs.shape == space.one_row:
                now = self.clock()  # observe(), written out for the usual request
                result = self._observe_one(client, space.one(inputs[0], outputs), now)
            else:
                result = self.observe(client, inputs, outputs)
        except ValueError:
            result = None
        self.memo = (request_id, inputs, result)
        return result

    def ledger_counts(self, a: Assessment) -> dict[str, dict[str, float]]:
        """The assessment's counters rounded for the ledger: ``{"counts": ..., "request": ...}``.

        Only the fractional values are rounded (:func:`round3`): the counters are counts of rows (integers),
        as are the request's rows, out-of-distribution, low-margin and duplicate figures. An assessment that
        raised a level carries them already (:attr:`Assessment.ledger`, the very dictionaries detections write).
        """
        ledger = a.ledger
        if ledger is None:
            ledger = _ledger(a.statistics, a.figures)
        return {"counts": ledger[0], "request": ledger[1]}

    def known_level(self, client: str) -> int:
        """The last level this instance saw for ``client`` (0 when unknown or stale); costs no round trip.

        It expires after ``level_memory`` seconds, so that a client refused here is judged again on the
        shared counters later (a wrongly blocked client is not refused by this instance for ever).
        """
        found = self.levels.get(client)
        if found is None:
            return 0
        if self.clock() > found[1]:
            del self.levels[client]
            return 0
        return found[0]

    def observe(self, client: str, inputs: Any, outputs: Any, now: float | None = None) -> Assessment:
        now = self.clock() if now is None else now
        space = self.space
        if type(inputs) is np.ndarray and inputs.dtype is _F64 and inputs.shape == space.one_row:
            return self._observe_one(client, space.one(inputs[0], outputs), now)  # the usual request
        x = space.rows(inputs)
        if x.shape[0] == 1:
            return self._observe_one(client, space.one(x[0], outputs), now)
        sig = space.signals(x, outputs)
        view, request = self._update(client, sig, now)
        return self._judge(
            client,
            sig.n,
            view.counters,
            view.global_counters,
            view.client_allowed,
            view.global_allowed,
            view.degraded,
            request,
            now,
        )

    def forget_local(self) -> None:
        """Drop what this instance remembers (a cold start does this implicitly)."""
        self.levels.clear()
        self._label_memo.clear()
        self.memo = None

    # --- the one state update -------------------------------------------------------------------------
    def _update(self, client: str, sig: RowSignals, now: float) -> tuple[Any, tuple[float, ...]]:
        n = float(sig.n)
        one = sig.n == 1
        counters: dict[str, float] = {"n": n, "ood": float(sig.ood[0]) if one else float(sig.ood.sum())}
        if sig.low is not None:
            counters["m"] = n
            counters["low"] = float(sig.low[0]) if one else float(sig.low.sum())
        if sig.labels is not None:
            if sig.n == 1:
                counters[f"y{int(sig.labels[0]) % MAX_LABELS}"] = 1.0
            else:
                for label, count in zip(*np.unique(sig.labels % MAX_LABELS, return_counts=True), strict=True):
                    counters[f"y{int(label)}"] = float(count)
        weight = self._weight(now)
        names = dict(zip(("n", "ood", "m", "low"), self._global_names, strict=True))
        global_counters = {names[k]: v * weight for k, v in counters.items() if k in names}
        level = self.known_level(client)
        obs = Observation(
            client=client,
            counters=counters,
            global_counters=global_counters,
            buckets=sig.buckets[-MAX_ROW_STATE:],
            sketches=[row.tobytes() for row in sig.sketches[-MAX_ROW_STATE:]],
            cost=n * self.settings.row_cost,
            client_bucket=self._suspect_bucket if level > 0 else self._bucket,
            global_bucket=self._global_bucket,
            close_within=self.baseline.close_threshold,
            count_dups=True,
        )
        view = self.state.update(obs, now)
        # in REQUEST_NAMES order (Assessment.figures)
        request: tuple[float, ...] = (
            n,
            counters["ood"],
            counters.get("low", 0.0),
            float(view.client_dups),
            float(sig.d2[0]) if one else float(np.max(sig.d2)),
        )
        if sig.margin is not None:
            request += (float(sig.margin[0]) if one else float(np.min(sig.margin)),)
        return view, request

    def _weight(self, now: float) -> float:
        """The global counters' increment scale ``e^{λ(t−t0)}`` of this epoch (names of the epoch updated)."""
        epoch = int(now // EPOCH)
        if epoch != self._epoch:
            self._epoch = epoch
            self._global_names = (f"n@{epoch}", f"ood@{epoch}", f"m@{epoch}", f"low@{epoch}")
        return math.exp(self.decay * (now - epoch * EPOCH))

    def _observe_one(self, client: str, r: OneRow, now: float) -> Assessment:
        """:meth:`_update` then :meth:`_judge` for one row, from plain values (the same counters and names).

        The state takes the row through :meth:`~sas.runtime.state.StateBackend.update_row` (no observation
        record to build); the in-process backend answers it in a few microseconds.
        """
        d2, is_ood, margin, is_low, label, sketch, bucket = r
        ood = 1.0 if is_ood else 0.0
        epoch = int(now // EPOCH)  # _weight(), written out
        if epoch != self._epoch:
            self._weight(now)
        weight = math.exp(self.decay * (now - epoch * EPOCH))
        g_n, g_ood, g_m, g_low = self._global_names
        if is_low is None:
            low = 0.0
            counters = {"n": 1.0, "ood": ood}
            global_counters = {g_n: weight, g_ood: ood * weight}
        else:
            low = 1.0 if is_low else 0.0
            counters = {"n": 1.0, "ood": ood, "m": 1.0, "low": low}
            global_counters = {g_n: weight, g_ood: ood * weight, g_m: weight, g_low: low * weight}
        if label is not None:
            label %= MAX_LABELS
            counters[_LABEL_NAMES[label]] = 1.0
        else:
            label = -1
        found = self.levels.get(client)  # known_level(), written out
        suspect = found is not None and found[0] > 0 and self.clock() <= found[1]
        mine, totals, dups, client_ok, global_ok, degraded = self.state.update_row(
            client,
            counters,
            global_counters,
            bucket,
            sketch,
            self.settings.row_cost,
            self._suspect_bucket if suspect else self._bucket,
            self._global_bucket,
            self.baseline.close_threshold,
            now,
        )
        request = (1.0, ood, low, float(dups), d2) if margin is None else (1.0, ood, low, float(dups), d2, margin)
        return self._judge(client, 1, mine, totals, client_ok, global_ok, degraded, request, now, label)

    # --- the tests ------------------------------------------------------------------------------------
    def _judge(
        self,
        client: str,
        rows: int,
        c: Mapping[str, float],
        global_counters: Mapping[str, float],
        client_allowed: bool,
        global_allowed: bool,
        degraded: bool,
        request: tuple[float, ...],
        now: float,
        label: int = -1,
    ) -> Assessment:
        """The sequential tests on the client's counters (``label``: the one row's label counter, −1 if none)."""
        try:  # subscripts: half the cost of .get(); a counter not there yet takes the second path
            n, ood, m, low = c["n"], c["ood"], c["m"], c["low"]
            nc, close, nd, dup = c["nc"], c["close"], c["nd"], c["dup"]
        except KeyError:
            get = c.get
            n, ood, m, low = get("n", 0.0), get("ood", 0.0), get("m", 0.0), get("low", 0.0)
            nc, close, nd, dup = get("nc", 0.0), get("close", 0.0), get("nd", 0.0), get("dup", 0.0)
        floor = -self.floor
        (up_ood, down_ood), (up_low, down_low), (up_close, down_close), (up_dup, down_dup) = self._terms
        # one sequential test per signal, written out (a loop over four tuples costs a microsecond here);
        # hits clamped to [0, rows], the statistic floored at -floor
        llr_ood = llr_low = llr_close = llr_dup = 0.0
        if n > 0:
            k = 0.0 if ood < 0.0 else n if ood > n else ood
            v = k * up_ood + (n - k) * down_ood
            llr_ood = v if v > floor else floor
        if m > 0:
            k = 0.0 if low < 0.0 else m if low > m else low
            v = k * up_low + (m - k) * down_low
            llr_low = v if v > floor else floor
        if nc > 0:
            k = 0.0 if close < 0.0 else nc if close > nc else close
            v = k * up_close + (nc - k) * down_close
            llr_close = v if v > floor else floor
        if nd > 0:
            k = 0.0 if dup < 0.0 else nd if dup > nd else dup
            v = k * up_dup + (nd - k) * down_dup
            llr_dup = v if v > floor else floor
        labels = self._label_term(client, c, label) if self._label_dof else 0.0
        volume = 0.0
        expected = self.settings.expected_queries
        if n > expected:
            volume = (n - expected) / expected * self.baseline.extraction_alarm
        extraction = llr_ood + llr_low + llr_close + labels + volume
        adversarial = llr_dup + llr_close + llr_low
        sybil = self._sybil(global_counters, now)
        ext_alarm, ext_block, adv_alarm, adv_block = self._sybil_thresholds if sybil else self._thresholds
        ext_level = 2 if extraction >= ext_block else 1 if extraction >= ext_alarm else 0
        adv_level = 2 if adversarial >= adv_block else 1 if adversarial >= adv_alarm else 0
        level = ext_level if ext_level > adv_level else adv_level
        levels = self.levels
        if level:
            levels[client] = (level, now + self.settings.level_memory)
            levels.move_to_end(client)
            while len(levels) > MAX_CLIENTS:
                levels.popitem(last=False)
        elif levels:
            levels.pop(client, None)
        statistics = (n, ood, m, low, nc, close, nd, dup, llr_ood, llr_low, llr_close, llr_dup, labels, volume)
        ledger = None
        if level:
            # A detection will be written: the ledger's copy now, once however many detectors write, the
            # statistics to three decimals (round3 written out: a call per value costs as much as the arithmetic)
            v = request[4]  # _ledger_request(), written out
            figures = {
                "rows": request[0],
                "ood": request[1],
                "low": request[2],
                "dup": request[3],
                "max_d2": _floor(v * 1000.0 + 0.5) / 1000.0 if -1e15 < v < 1e15 else v,
            }
            if len(request) > 5:
                v = request[5]
                figures["min_margin"] = _floor(v * 1000.0 + 0.5) / 1000.0 if -1e15 < v < 1e15 else v
            ledger = (
                {
                    "n": n,
                    "ood": ood,
                    "m": m,
                    "low": low,
                    "nc": nc,
                    "close": close,
                    "nd": nd,
                    "dup": dup,
                    "llr_ood": _floor(llr_ood * 1000.0 + 0.5) / 1000.0 if -1e15 < llr_ood < 1e15 else llr_ood,
                    "llr_low": _floor(llr_low * 1000.0 + 0.5) / 1000.0 if -1e15 < llr_low < 1e15 else llr_low,
                    "llr_close": _floor(llr_close * 1000.0 + 0.5) / 1000.0 if -1e15 < llr_close < 1e15 else llr_close,
                    "llr_dup": _floor(llr_dup * 1000.0 + 0.5) / 1000.0 if -1e15 < llr_dup < 1e15 else llr_dup,
                    "llr_labels": _floor(labels * 1000.0 + 0.5) / 1000.0 if -1e15 < labels < 1e15 else labels,
                    "llr_volume": _floor(volume * 1000.0 + 0.5) / 1000.0 if -1e15 < volume < 1e15 else volume,
                },
                figures,
            )
        return _assessment(
            (
                client,
                rows,
                extraction,
                adversarial,
                ext_level,
                adv_level,
                client_allowed,
                global_allowed,
                sybil,
                degraded,
                statistics,
                request,
                ledger,
            )
        )

    def _label_term(self, client: str, counters: Mapping[str, float], label: int) -> float:
        """Half the BIC-penalised G statistic of the client's label histogram against the benign prior.

        ``G = Σ k·log(k/(T·p)) = S − T·log T`` with ``S = Σ k·log(k/p)``. A one-row request adds 1 to one
        label, so ``S`` is updated with two logarithms when the counts are exactly the ones this instance
        saw last for the client plus that row (checked element by element: any other change, another
        instance's rows, a reset, recomputes the sum). Plain floats: K is small (≤ 32).
        """
        counts = list(map(counters.get, self.label_names, _ZEROS))
        total = sum(counts)
        log = math.log
        memo = self._label_memo.get(client)
        s = None
        if memo is not None:
            before, s = memo
            if 0 <= label < len(counts):
                k = counts[label]
                counts[label] = k - 1.0  # exact: counts are integers far below 2**53
                unchanged = counts == before
                counts[label] = k
                if unchanged:
                    lp = self._log_prior[label]
                    s += k * (log(k) - lp) - ((k - 1.0) * (log(k - 1.0) - lp) if k > 1.0 else 0.0)
                else:
                    s = None
            elif counts != before:
                s = None
        if s is None:
            s = 0.0
            for k, lp in zip(counts, self._log_prior, strict=True):
                if k > 0:
                    s += k * (log(k) - lp)
            if memo is None and len(self._label_memo) >= MAX_CLIENTS:
                del self._label_memo[next(iter(self._label_memo))]  # the longest-known client
        self._label_memo[client] = (counts, s)
        if total < 2:
            return 0.0
        log_total = log(total)
        g = s - total * log_total - self._label_dof * log_total
        return self.settings.label_weight * g if g > 0.0 else 0.0

    def _sybil(self, global_counters: Mapping[str, float], now: float) -> tuple[str, ...]:
        epoch = int(now // EPOCH)
        if epoch != self._sybil_epoch:  # counter names of this epoch, formatted once a week, not per request
            self._sybil_epoch = epoch
            s = self.settings
            self._sybil_tests = tuple(
                (sig, f"{k}@{epoch}", f"{n}@{epoch}", self.p0[sig], s.sybil_ratio * self.p0[sig])
                for sig, k, n in _SYBIL_TESTS
            )
        get = global_counters.get
        min_rows = self.settings.sybil_min_rows
        scale = 0.0
        fired: tuple[str, ...] = ()
        for signal, k_name, n_name, p0, ratio in self._sybil_tests:
            n = get(n_name, 0.0)
            if not n:
                continue
            if not scale:
                scale = math.exp(-self.decay * (now - epoch * EPOCH))
            n *= scale
            if n < min_rows:
                continue
            k = get(k_name, 0.0) * scale
            # the share first: at benign rates it already says no, and the z-score needs a square root
            if k / n > ratio and (k - n * p0) / math.sqrt(n * p0 * (1.0 - p0)) > self.settings.sybil_z:
                fired += (signal,)
        return fired


def degrade_outputs(outputs: Any) -> Any:
    """Top-1 only: probabilities become one-hot rows (same shape and dtype), labels stay labels."""
    try:
        out = np.asarray(outputs)
    except (TypeError, ValueError):
        return outputs
    if out.ndim == 2 and out.shape[1] >= 2 and out.dtype.kind == "f":
        onehot = np.zeros_like(out)
        onehot[np.arange(out.shape[0]), np.argmax(out, axis=1)] = 1.0
        return onehot
    return outputs
