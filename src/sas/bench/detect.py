"""``sas bench detect``: every attack against every task, single instance and spread over N processes.

Per task: train the victim, fit the baseline on the defender's held-out rows (``sas baseline fit``'s code),
run each attack against a fresh deployment, run a benign population, and the adaptive cases (query
blinding, Sybil splitting over 50 ids, dilution with the attacker's own benign-looking queries, cold-start
resets with per-instance memory state). With a Redis URL
the plain attacks and the benign population run again over ``workers`` processes sharing Redis,
round-robin, and once on a single instance using the same Redis (so the two differ only in the spreading).
ART attacks join when the ``assess`` extra is installed. The baseline's secret key is random per run, so
queries-to-detection move by a few queries from run to run.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sas.bench.datasets import load_task
from sas.bench.models import train_victim
from sas.bench.runner import AttackOutcome, BenignOutcome, outcome_dict, run_attack, run_benign
from sas.bench.targets import LocalTarget, MultiTarget
from sas.runtime.baseline import Baseline, fit_baseline

PLAIN = ("jbda", "uniform-random", "equation-solving", "knockoff-natural", "boundary-walk", "dow-flood")
EXTRACTION = ("jbda", "uniform-random", "equation-solving", "knockoff-natural")
ADAPTIVE: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("blinding", "jbda", {"blinding": 0.03}),
    ("blinding", "boundary-walk", {"blinding": 0.03}),
    ("sybil-50", "jbda", {"clients": 50}),
    ("sybil-50", "knockoff-natural", {"clients": 50}),
    ("sybil-50", "boundary-walk", {"clients": 50}),
    ("dilute-4", "jbda", {"dilute": 4}),
    ("dilute-4", "knockoff-natural", {"dilute": 4}),
    ("dilute-4", "boundary-walk", {"dilute": 4}),
    ("cold-start-reset-5", "jbda", {"reset_every": 5}),
    ("cold-start-reset-5", "knockoff-natural", {"reset_every": 5}),
    ("cold-start-reset-5", "uniform-random", {"reset_every": 5}),
)


@dataclass
class BenchConfig:
    tasks: tuple[str, ...] = ("digits", "breast_cancer")
    budget: int = 600
    benign_clients: int = 200
    redis: str = ""
    workers: int = 8
    seeds: int = 1
    art: bool = True
    target_fpr: float = 0.01
    calibration_sessions: int = 200
    log: Callable[[str], None] = field(default=lambda _: None)


def _art_available() -> bool:
    try:
        import art  # noqa: F401
    except Exception:  # ART missing or broken (it needs `packaging`): the ART attacks are skipped
        return False
    return True


def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    started = time.perf_counter()
    results: dict[str, Any] = {"config": {k: v for k, v in cfg.__dict__.items() if k != "log"}, "tasks": {}}
    attacks: list[AttackOutcome] = []
    benign: list[BenignOutcome] = []
    use_art = cfg.art and _art_available()
    results["art"] = "used" if use_art else "not installed (pip install 'serverless-ai-shield[assess]')"
    for task in cfg.tasks:
        split = load_task(task)
        victim = train_victim(split)
        t0 = time.perf_counter()
        baseline = fit_baseline(
            split.x_baseline,
            victim.predict_proba(split.x_baseline),
            target_fpr=cfg.target_fpr,
            sessions=cfg.calibration_sessions,
        )
        fit_s = time.perf_counter() - t0
        results["tasks"][task] = {
            "victim_accuracy": float((victim.predict(split.x_benign) == split.y_benign).mean()),
            "baseline_fit_seconds": round(fit_s, 2),
            "signals": {k: {"p0": round(v.p0, 4), "p1": round(v.p1, 3)} for k, v in baseline.signals.items()},
            "alarms": {"extraction": baseline.extraction_alarm, "adversarial": baseline.adversarial_alarm},
        }
        cfg.log(f"{task}: baseline fitted in {fit_s:.1f}s")
        names = list(PLAIN)
        if use_art:
            from sas.bench.art_attacks import register_art

            names += register_art()
        for seed in range(cfg.seeds):
            for name in names:
                o = run_attack(
                    LocalTarget(baseline, victim),
                    split,
                    victim,
                    name,
                    deployment="single",
                    budget=cfg.budget,
                    seed=seed,
                )
                attacks.append(o)
                cfg.log(_line(o))
            for variant, name, kw in ADAPTIVE:
                o = run_attack(
                    LocalTarget(baseline, victim),
                    split,
                    victim,
                    name,
                    deployment="single",
                    budget=cfg.budget,
                    seed=seed,
                    variant=variant,
                    **kw,
                )
                attacks.append(o)
                cfg.log(_line(o))
        b = run_benign(LocalTarget(baseline, victim), split, deployment="single", clients=cfg.benign_clients)
        benign.append(b)
        cfg.log(_benign_line(b))
        if cfg.redis:
            attacks += _spread(cfg, baseline, victim, split, names)
            multi = MultiTarget(baseline, victim, cfg.redis, n=cfg.workers)
            try:
                b = run_benign(multi, split, deployment=f"{cfg.workers}-process-redis", clients=cfg.benign_clients)
            finally:
                multi.close()
            benign.append(b)
            cfg.log(_benign_line(b))
    results["attacks"] = [outcome_dict(a) for a in attacks]
    results["benign"] = [outcome_dict(b) for b in benign]
    results["summary"] = summarise(attacks, benign)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def _spread(cfg: BenchConfig, baseline: Baseline, victim: Any, split: Any, names: list[str]) -> list[AttackOutcome]:
    out = []
    for name in names:
        single = LocalTarget(baseline, victim, cfg.redis)
        try:
            o = run_attack(single, split, victim, name, deployment="single-redis", budget=cfg.budget)
        finally:
            single.close()
        out.append(o)
        cfg.log(_line(o))
        multi = MultiTarget(baseline, victim, cfg.redis, n=cfg.workers)
        try:
            o = run_attack(multi, split, victim, name, deployment=f"{cfg.workers}-process-redis", budget=cfg.budget)
        finally:
            multi.close()
        out.append(o)
        cfg.log(_line(o))
    return out


def summarise(attacks: list[AttackOutcome], benign: list[BenignOutcome]) -> dict[str, Any]:
    plain = [a for a in attacks if a.variant == "plain"]
    extraction = [a.queries_to_detection for a in plain if a.attack in EXTRACTION and a.queries_to_detection]
    return {
        "plain_attacks": len(plain),
        "plain_detected": sum(a.detected for a in plain),
        "all_plain_detected": all(a.detected for a in plain),
        "median_queries_to_detection_extraction": statistics.median(extraction) if extraction else None,
        "max_benign_client_fpr": max((b.client_fpr for b in benign), default=0.0),
        "max_benign_request_block_rate": max((b.request_block_rate for b in benign), default=0.0),
        "adaptive_not_stopped": [
            f"{a.task}/{a.variant}/{a.attack}" for a in attacks if a.variant != "plain" and a.queries_to_block is None
        ],
        "adaptive_missed": [
            f"{a.task}/{a.variant}/{a.attack}" for a in attacks if a.variant != "plain" and not a.detected
        ],
    }


def _line(o: AttackOutcome) -> str:
    det = f"detected after {o.queries_to_detection} q by {o.detector}" if o.detected else "NOT detected"
    blk = f", blocked at {o.queries_to_block}" if o.queries_to_block else ""
    res = ", ".join(f"{k}={v:.3f}" for k, v in o.result.items())
    return f"  {o.task:13} {o.deployment:18} {o.variant:19} {o.attack:24} {det}{blk}; {o.queries_made} q made; {res}"


def _benign_line(b: BenignOutcome) -> str:
    return (
        f"  {b.task:13} {b.deployment:18} benign: {b.clients} clients, {b.requests} requests; flagged clients "
        f"{b.client_fpr:.2%}, blocked requests {b.request_block_rate:.3%}, degraded {b.degraded_requests}"
    )


def write_results(results: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(results, indent=2, sort_keys=True, default=str) + "\n")
