"""Defended deployments the bench drives: one instance in-process, or N worker processes sharing a store.

Each instance is a real :class:`~sas.Shield` (enforce mode, process monitors off: the bench measures the
request detectors) wrapping the victim's ``predict_proba`` with ``guard_model``, exactly as a function
would. Requests go through ``Shield.run`` with a :class:`RequestContext`, so the verdict, the 403/429 answer
and the degraded outputs are the ones a caller would get. Time is simulated (token buckets see the
scenario's request rates, not the machine's speed).
"""

from __future__ import annotations

import multiprocessing
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sas.events.record import RuntimeEvent
from sas.events.sink import MemorySink
from sas.runtime.baseline import Baseline
from sas.runtime.context import RequestContext
from sas.runtime.detectors.model_guard import ModelGuard
from sas.runtime.detectors.model_suite import model_detectors
from sas.runtime.shield import Shield
from sas.runtime.state import StateBackend, open_state

BENCH_CONFIG: dict[str, Any] = {
    "runtime": {
        "mode": "enforce",
        "invocation_events": False,
        "monitors": {"audit": False, "sdk": False, "cold_start": False, "contamination": False},
    },
    "forensics": {"ledger": "memory"},
}


@dataclass(frozen=True)
class Reply:
    status: int  # 200, or the block status (403/429)
    output: Any  # the model's (possibly degraded) answer; None when blocked
    events: tuple[tuple[str, str, str], ...] = ()  # (detector, verdict, client) of non-allow events
    degraded_state: bool = False


@dataclass
class Instance:
    """One function instance: a Shield + the model guard, on a given state backend."""

    baseline: Baseline
    victim: Any
    state_spec: str = "memory"
    prefix: str = field(default_factory=lambda: f"bench-{uuid.uuid4().hex[:10]}")
    name: str = "i0"
    model_table: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.now = 0.0
        self.events: list[RuntimeEvent] = []
        self.degrade_notices: list[str] = []
        config = {**BENCH_CONFIG, "runtime": {**BENCH_CONFIG["runtime"], "model": dict(self.model_table)}}
        self.state: StateBackend = open_state(
            self.state_spec, prefix=self.prefix, on_degrade=self.degrade_notices.append
        )
        guard, detectors = model_detectors(config, self.baseline, env={}, state=self.state)
        self.guard: ModelGuard = guard
        guard.clock = lambda: self.now
        self.shield = Shield(config, sink=MemorySink(), detectors=detectors, install=False, env={})
        self.shield.alert_hooks.append(self.events.append)
        self.predict = self.shield.guard_model(self.victim.predict_proba)
        self.count = 0

    def query(self, client: str, rows: Any, now: float) -> Reply:
        self.now = now
        self.count += 1
        self.events.clear()
        ctx = RequestContext(
            request_id=f"{self.name}-{self.count}",
            client_id=client,
            platform="bench",
            function="bench",
            instance_id=self.name,
        )
        x = np.asarray(rows, dtype=np.float64)
        x = x.reshape(1, -1) if x.ndim == 1 else x
        status, output = self.shield.run(ctx, lambda: (200, self.predict(x)), lambda code, body: (code, None))
        events = tuple((e.detector, str(e.verdict), e.client_id) for e in self.events)
        return Reply(status, output, events, bool(self.degrade_notices))

    def reset(self) -> None:
        """A cold start with the state wiped (the attacker's best case against per-instance memory)."""
        self.state.reset()
        self.guard.forget_local()

    def close(self) -> None:
        self.shield.close()
        self.state.close()


class LocalTarget:
    def __init__(self, baseline: Baseline, victim: Any, state_spec: str = "memory", **kw: Any) -> None:
        self.instance = Instance(baseline, victim, state_spec, **kw)
        self.instances = 1

    def query(self, client: str, rows: Any, now: float) -> Reply:
        return self.instance.query(client, rows, now)

    def reset(self) -> None:
        self.instance.reset()

    def close(self) -> None:
        self.instance.close()


def _worker(
    conn: Any, baseline: Baseline, victim: Any, spec: str, prefix: str, name: str, table: dict[str, Any]
) -> None:
    instance = Instance(baseline, victim, spec, prefix=prefix, name=name, model_table=table)
    while True:
        msg = conn.recv()
        if msg is None:
            break
        if msg[0] == "reset":
            instance.guard.forget_local()
            if msg[1]:
                instance.state.reset()
            conn.send(True)
            continue
        _, client, rows, now = msg
        reply = instance.query(client, rows, now)
        conn.send(reply)
    instance.close()
    conn.close()


class MultiTarget:
    """``n`` worker processes, each its own Shield, sharing one store; requests go round-robin."""

    def __init__(
        self,
        baseline: Baseline,
        victim: Any,
        state_spec: str,
        n: int = 8,
        prefix: str | None = None,
        model_table: dict[str, Any] | None = None,
    ) -> None:
        ctx = multiprocessing.get_context("fork")  # workers inherit the trained model; no pickling of it
        self.prefix = prefix or f"bench-{uuid.uuid4().hex[:10]}"
        self.instances = n
        self.conns: list[Any] = []
        self.procs: list[Any] = []
        for i in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker,
                args=(child, baseline, victim, state_spec, self.prefix, f"w{i}", dict(model_table or {})),
                daemon=True,
            )
            proc.start()
            self.conns.append(parent)
            self.procs.append(proc)
        self.next = 0

    def query(self, client: str, rows: Any, now: float) -> Reply:
        conn = self.conns[self.next % len(self.conns)]
        self.next += 1
        conn.send(("q", client, np.asarray(rows, dtype=np.float64), now))
        reply: Reply = conn.recv()
        return reply

    def reset(self) -> None:
        for i, conn in enumerate(self.conns):
            conn.send(("reset", i == 0))
            conn.recv()

    def close(self) -> None:
        for conn in self.conns:
            try:
                conn.send(None)
            except OSError:
                continue
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
