"""Detector state backends: ``memory`` (one instance), ``sqlite:PATH`` (one host), ``redis://...`` (many).

``open_state(spec)`` builds one; shared backends are wrapped so that losing the store degrades to local
state and never fails a request.
"""

from __future__ import annotations

from collections.abc import Callable

from sas.runtime.state.base import Observation, StateBackend, StateError, StateView, TokenBucket

__all__ = ["Observation", "StateBackend", "StateError", "StateView", "TokenBucket", "open_state"]


def open_state(
    spec: str = "memory",
    *,
    prefix: str = "sas",
    client_ttl: float = 86_400.0,
    window: float = 3_600.0,
    on_degrade: Callable[[str], None] | None = None,
) -> StateBackend:
    """``memory`` | ``sqlite:PATH`` | ``redis://host:port/db`` (or ``rediss://``)."""
    if spec == "memory":
        from sas.runtime.state.memory import MemoryState

        return MemoryState(client_ttl=client_ttl, window=window)
    if spec.startswith("sqlite:"):
        from sas.runtime.state.fallback import FallbackState
        from sas.runtime.state.sqlite_state import SqliteState

        return FallbackState(SqliteState(spec[7:], client_ttl=client_ttl, window=window), on_degrade=on_degrade)
    if spec.startswith(("redis://", "rediss://", "unix://")):
        from sas.runtime.state.fallback import FallbackState
        from sas.runtime.state.redis_state import RedisState

        primary = RedisState(spec, prefix=prefix, client_ttl=client_ttl, window=window)
        return FallbackState(primary, on_degrade=on_degrade)
    raise StateError(f"unknown state backend {spec!r} (expected memory, sqlite:PATH or redis://HOST:PORT/DB)")
