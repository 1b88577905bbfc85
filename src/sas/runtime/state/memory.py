"""In-process state: one function instance. Bounded like the shared backends (fixed-size per client)."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from sas.runtime.state.base import Observation, RowView, StateBackend, StateView, TokenBucket
from sas.runtime.state.summary import ClientSummary, take

# tuple.__new__ on the class: what RowView(...) does, without its Python-level __new__ (hot path)
_row_view = cast(Callable[[tuple[Any, ...]], RowView], functools.partial(tuple.__new__, RowView))


class MemoryState(StateBackend):
    name = "memory"

    def __init__(self, *, client_ttl: float = 86_400.0, window: float = 3_600.0, max_clients: int = 100_000) -> None:
        super().__init__(client_ttl=client_ttl, window=window)
        self.max_clients = max_clients  # least recently seen clients are evicted beyond this
        self._clients: OrderedDict[str, ClientSummary] = OrderedDict()
        self._global: dict[str, float] = {}
        self._global_buckets: dict[str, int] = {}
        self._window_index = -1
        self._global_tokens: float | None = None
        self._global_stamp = 0.0
        self._lock = threading.Lock()

    def update(self, obs: Observation, now: float) -> StateView:
        with self._lock:
            client = self._client(obs.client, now)
            dups, before, client_ok = client.apply(obs, now)
            for name, amount in obs.global_counters.items():
                self._global[name] = self._global.get(name, 0.0) + float(amount)
            window = int(now // self.window)
            if window != self._window_index:
                self._window_index, self._global_buckets = window, {}
            counts = []
            for b in obs.buckets:
                self._global_buckets[b] = self._global_buckets.get(b, 0) + 1
                counts.append(self._global_buckets[b])
            global_ok = True
            if obs.global_bucket is not None:
                global_ok, self._global_tokens, self._global_stamp = take(
                    self._global_tokens, self._global_stamp, obs.global_bucket, obs.cost, now
                )
            return StateView(dict(client.counters), dict(self._global), dups, counts, before, client_ok, global_ok)

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
        with self._lock:
            clients = self._clients
            summary = clients.get(client)  # _client(), written out
            if summary is not None and now - summary.seen <= self.client_ttl:
                clients.move_to_end(client)
            else:
                summary = self._client(client, now)
            dups, client_ok = summary.apply_row(counters, bucket, sketch, cost, client_bucket, close_within, now)
            totals = self._global
            for name, amount in global_counters.items():
                totals[name] = totals.get(name, 0.0) + amount
            window = int(now // self.window)
            if window != self._window_index:
                self._window_index, self._global_buckets = window, {}
            hits = self._global_buckets
            hits[bucket] = hits.get(bucket, 0) + 1
            global_ok = True
            if global_bucket is not None:  # take(), written out
                tokens, burst = self._global_tokens, global_bucket.burst
                if tokens is None:
                    tokens = burst
                else:
                    elapsed = now - self._global_stamp
                    tokens += (elapsed if elapsed > 0.0 else 0.0) * global_bucket.rate
                    tokens = tokens if tokens < burst else burst  # min(burst, tokens), without the call
                global_ok = tokens >= cost
                self._global_tokens = tokens - cost if global_ok else tokens
                self._global_stamp = now
            return _row_view((dict(summary.counters), dict(totals), dups, client_ok, global_ok, False))

    def mirror(self, obs: Observation, view: StateView, now: float) -> None:
        """Keep this store ready to take over from a shared one (:class:`~.fallback.FallbackState`).

        The counters become the shared store's (every instance's queries, not only this one's), so an
        outage continues the sequential tests from where the shared state had them; this request's bucket
        ids and sketches join the local rings and its cost is taken from the local token buckets. Cheaper
        than replaying the observation (no distance or duplicate counting, which the shared store did).
        """
        self._mirror(
            obs.client,
            view.counters,
            view.global_counters,
            obs.buckets,
            obs.sketches,
            obs.cost,
            obs.client_bucket,
            obs.global_bucket,
            now,
        )

    def mirror_row(
        self,
        client: str,
        view: RowView,
        bucket: str,
        sketch: bytes,
        cost: float,
        client_bucket: TokenBucket | None,
        global_bucket: TokenBucket | None,
        now: float,
    ) -> None:
        """:meth:`mirror` for a one-row update (``view``: what the shared store's ``update_row`` answered)."""
        self._mirror(
            client, view.counters, view.global_counters, (bucket,), (sketch,), cost, client_bucket, global_bucket, now
        )

    def _mirror(
        self,
        name: str,
        counters: Mapping[str, float],
        global_counters: Mapping[str, float],
        buckets: Sequence[str],
        sketches: Sequence[bytes],
        cost: float,
        client_bucket: TokenBucket | None,
        global_bucket: TokenBucket | None,
        now: float,
    ) -> None:
        with self._lock:
            client = self._client(name, now)
            client.mirror_parts(counters, buckets, sketches, cost, client_bucket, now)
            self._global = dict(global_counters)
            window = int(now // self.window)
            if window != self._window_index:
                self._window_index, self._global_buckets = window, {}
            for b in buckets:
                self._global_buckets[b] = self._global_buckets.get(b, 0) + 1
            if global_bucket is not None:
                _, self._global_tokens, self._global_stamp = take(
                    self._global_tokens, self._global_stamp, global_bucket, cost, now
                )

    def _client(self, name: str, now: float) -> ClientSummary:
        client = self._clients.get(name)
        if client is None or now - client.seen > self.client_ttl:
            client = ClientSummary(cached=True)
            self._clients[name] = client
            while len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(name)
        return client

    def client_counters(self, client: str) -> Mapping[str, float]:
        with self._lock:
            found = self._clients.get(client)
            return dict(found.counters) if found else {}

    def reset(self) -> None:
        with self._lock:
            self._clients.clear()
            self._global.clear()
            self._global_buckets.clear()
            self._global_tokens = None
