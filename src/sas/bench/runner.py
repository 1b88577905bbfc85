"""Scenarios: attacks and benign populations against a defended target, and the figures they yield.

An attack's *detection* is the first non-allow verdict (alert or block) on any of its client ids; *queries
to detection* counts its queries up to and including that one. The attacker goes on (with degraded answers,
and waiting out 429s) until it is refused with 403 or its budget ends; its result (surrogate fidelity,
evasion success) is measured at that point. A benign client is *flagged* if any of its requests drew a
non-allow verdict; a benign request is *blocked* if it was answered 403 or 429.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from sas.bench.attacks import ATTACKS, Attack, Blocked
from sas.bench.datasets import Split
from sas.bench.targets import Reply


class Target(Protocol):
    instances: int

    def query(self, client: str, rows: Any, now: float) -> Reply: ...

    def reset(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class AttackOutcome:
    task: str
    attack: str
    kind: str
    deployment: str
    variant: str = "plain"
    detected: bool = False
    queries_to_detection: int | None = None
    queries_to_block: int | None = None
    queries_made: int = 0
    detector: str = ""
    throttled: int = 0
    ids_blocked: int = 0
    cover_queries: int = 0  # benign rows the attacker sent to dilute its own
    result: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class BenignOutcome:
    task: str
    deployment: str
    clients: int
    requests: int
    flagged_clients: int
    blocked_requests: int
    degraded_requests: int

    @property
    def client_fpr(self) -> float:
        return self.flagged_clients / max(1, self.clients)

    @property
    def request_block_rate(self) -> float:
        return self.blocked_requests / max(1, self.requests)


def run_attack(
    target: Target,
    split: Split,
    victim: Any,
    attack_name: str,
    *,
    deployment: str,
    budget: int = 1000,
    seed: int = 0,
    variant: str = "plain",
    clients: int = 1,
    reset_every: int = 0,
    blinding: float = 0.0,
    rate: float = 2.0,
    dilute: int = 0,
) -> AttackOutcome:
    """Run one attack; ``clients`` > 1 spreads it round-robin over that many ids (Sybil), ``reset_every``
    wipes the state every that many queries (cold-start resets), ``dilute`` sends that many benign held-out
    rows from the same client before each attack query (hiding in benign traffic)."""
    attack: Attack = ATTACKS[attack_name](split, victim, seed=seed, blinding=blinding)
    out = AttackOutcome(split.name, attack_name, attack.kind, deployment, variant)
    ids = [f"attacker-{seed}-{i}" for i in range(clients)]
    rate = 50.0 if attack.kind == "abuse" else rate
    clock = [1_000.0]
    rng = np.random.default_rng(seed + 99)
    count = [0]

    live = list(ids)

    def oracle(x: Any) -> Any:
        if reset_every and count[0] and count[0] % reset_every == 0:
            target.reset()
        count[0] += 1
        for _ in range(dilute):
            cover = split.x_benign[int(rng.integers(0, split.x_benign.shape[0]))]
            clock[0] += 1.0 / rate
            reply = target.query(live[count[0] % len(live)] if live else ids[0], cover, clock[0])
            out.cover_queries += 1
            if [e for e in reply.events if e[2] in ids] and not out.detected:
                out.detected, out.queries_to_detection, out.detector = True, count[0], reply.events[0][0]
        for _ in range(30):
            if not live:
                raise Blocked
            client = live[count[0] % len(live)]
            clock[0] += 1.0 / rate
            reply = target.query(client, x, clock[0])
            mine = [e for e in reply.events if e[2] in ids]
            if mine and not out.detected:
                out.detected, out.queries_to_detection, out.detector = True, count[0], mine[0][0]
            if reply.status == 403:
                if out.queries_to_block is None:
                    out.queries_to_block = count[0]
                live.remove(client)  # a Sybil attacker drops the refused id and goes on with the others
                out.ids_blocked += 1
                continue
            if reply.status == 429:
                out.throttled += 1
                clock[0] += 5.0  # back off and retry, as a patient attacker would
                if attack.kind == "abuse":
                    raise Blocked
                continue
            return np.asarray(reply.output)[0] if attack.rows_per_query == 1 else np.asarray(reply.output)
        raise Blocked

    started = time.perf_counter()
    result = attack.execute(oracle, budget)
    out.queries_made = result.queries
    out.result = result.metrics
    out.seconds = round(time.perf_counter() - started, 3)
    return out


def run_benign(
    target: Target,
    split: Split,
    *,
    deployment: str,
    clients: int = 100,
    mean_queries: int = 40,
    retry_rate: float = 0.02,
    seed: int = 0,
) -> BenignOutcome:
    """Benign clients from held-out rows, interleaved in time at 0.05–1 request/s each; ``retry_rate`` of
    requests are sent twice."""
    rng = np.random.default_rng(seed + 7)
    pool = split.x_benign
    schedule: list[tuple[float, str, int]] = []
    for c in range(clients):
        n = int(min(pool.shape[0], max(3, rng.geometric(1.0 / mean_queries))))
        rows = rng.permutation(pool.shape[0])[:n]
        t = float(rng.uniform(0, 600))
        rate = float(rng.uniform(0.05, 1.0))
        for i in rows:
            t += float(rng.exponential(1.0 / rate))
            schedule.append((t, f"benign-{seed}-{c}", int(i)))
            if rng.random() < retry_rate:  # a client retrying the same request (timeout, double click)
                t += float(rng.uniform(0.5, 5.0))
                schedule.append((t, f"benign-{seed}-{c}", int(i)))
    schedule.sort()
    flagged: set[str] = set()
    blocked = degraded = 0
    for t, client, i in schedule:
        reply = target.query(client, pool[i : i + 1], 1_000.0 + t)
        if any(e[2] == client for e in reply.events):
            flagged.add(client)
        if reply.status in (403, 429):
            blocked += 1
        elif reply.output is not None and np.count_nonzero(np.asarray(reply.output)) == 1:
            degraded += 1
    return BenignOutcome(split.name, deployment, clients, len(schedule), len(flagged), blocked, degraded)


def outcome_dict(o: AttackOutcome | BenignOutcome) -> dict[str, Any]:
    d = asdict(o)
    if isinstance(o, BenignOutcome):
        d["client_fpr"] = round(o.client_fpr, 4)
        d["request_block_rate"] = round(o.request_block_rate, 5)
    return d


TargetFactory = Callable[[], Target]
