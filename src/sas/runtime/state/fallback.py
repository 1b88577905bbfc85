"""Degrade, never fail: when the shared store errors, answer from local state and say so.

The request goes on with the instance's own memory (``StateView.degraded`` is True and ``on_degrade`` is
called once per outage, so the shield can record an event); the shared store is retried after ``retry_after``
seconds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping

from sas.runtime.state.base import Observation, RowView, StateBackend, StateError, StateView, TokenBucket
from sas.runtime.state.memory import MemoryState


class FallbackState(StateBackend):
    def __init__(
        self,
        primary: StateBackend,
        *,
        local: StateBackend | None = None,
        retry_after: float = 5.0,
        on_degrade: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(client_ttl=primary.client_ttl, window=primary.window)
        self.name = f"{primary.name}+fallback"
        self.primary = primary
        self.local = local or MemoryState(client_ttl=primary.client_ttl, window=primary.window)
        self.retry_after = retry_after
        self.on_degrade = on_degrade
        self._clock = clock
        self._down_since: float | None = None
        self.failures = 0

    @property
    def degraded(self) -> bool:
        return self._down_since is not None

    def _primary_due(self) -> bool:
        """Whether to ask the shared store: it is up, or it has been down for ``retry_after``."""
        return self._down_since is None or self._clock() - self._down_since >= self.retry_after

    def _primary_lost(self, exc: StateError) -> None:
        """Count the failure; the first of an outage is reported and starts it."""
        self.failures += 1
        if self._down_since is None and self.on_degrade is not None:
            self.on_degrade(str(exc))
        self._down_since = self._clock()

    def update(self, obs: Observation, now: float) -> StateView:
        if self._primary_due():
            try:
                view = self.primary.update(obs, now)
            except StateError as exc:
                self._primary_lost(exc)
            else:
                self._down_since = None
                # keep local state warm for the next outage: a memory store mirrors the shared view (cheap,
                # and it carries every instance's counts); another kind replays the observation
                if isinstance(self.local, MemoryState):
                    self.local.mirror(obs, view, now)
                else:
                    self.local.update(obs, now)
                return view
        view = self.local.update(obs, now)
        return StateView(
            view.counters,
            view.global_counters,
            view.client_dups,
            view.global_bucket_counts,
            view.sketches,
            view.client_allowed,
            view.global_allowed,
            degraded=True,
        )

    def update_row(
        self,
        client: str,
        counters: Mapping[str, float],
        global_counters: Mapping[str, float],
        bucket: str,
        sketch: bytes,
        cost: float,
        client_bucket: TokenBucket | None,
        global_bucket: TokenBucket | None,
        close_within: float,
        now: float,
    ) -> RowView:
        """:meth:`update` for one row: the shared store's own one-row update, mirrored or replaced as above."""
        args = (
            client,
            counters,
            global_counters,
            bucket,
            sketch,
            cost,
            client_bucket,
            global_bucket,
            close_within,
            now,
        )
        if self._primary_due():
            try:
                view = self.primary.update_row(*args)
            except StateError as exc:
                self._primary_lost(exc)
            else:
                self._down_since = None
                local = self.local
                if isinstance(local, MemoryState):
                    local.mirror_row(client, view, bucket, sketch, cost, client_bucket, global_bucket, now)
                else:
                    local.update_row(*args)
                return view
        row = self.local.update_row(*args)
        return row._replace(degraded=True)

    def client_counters(self, client: str) -> Mapping[str, float]:
        try:
            return self.primary.client_counters(client)
        except StateError:
            return self.local.client_counters(client)

    def reset(self) -> None:
        self.local.reset()
        with contextlib.suppress(StateError):
            self.primary.reset()

    def close(self) -> None:
        self.primary.close()
