"""Redis state: many function instances share one view of every client (a real Redis server).

One request is one ``EVALSHA`` of a Lua script: counters, the near-duplicate rings, the global bucket
counts of the current window and both token buckets update atomically in one round trip. Keys expire, so
idle clients cost nothing. The ``redis`` package is imported when this backend is opened, never at
``sas.runtime`` import time.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sas.runtime.state.base import (
    MAX_COUNTERS,
    RECENT_BUCKETS,
    RECENT_SKETCHES,
    Observation,
    StateBackend,
    StateError,
    StateView,
)

_SCRIPT = """
local now = tonumber(ARGV[1])
local client_ttl = tonumber(ARGV[2])
local window_ttl = tonumber(ARGV[3])
local max_counters = tonumber(ARGV[4])
local ring_b = tonumber(ARGV[5])
local ring_s = tonumber(ARGV[6])
local cost = tonumber(ARGV[7])
local c_rate, c_burst = tonumber(ARGV[8]), tonumber(ARGV[9])
local g_rate, g_burst = tonumber(ARGV[10]), tonumber(ARGV[11])
local close_within = tonumber(ARGV[12])
local count_dups = tonumber(ARGV[13])
local i = 14

local function bump(name, amount)
  if redis.call('HEXISTS', KEYS[1], name) == 1 or redis.call('HLEN', KEYS[1]) < max_counters then
    redis.call('HINCRBYFLOAT', KEYS[1], name, amount)
  end
end
local function dec(s)
  local t = {string.byte(s, 1, -1)}
  for j = 1, #t do if t[j] > 127 then t[j] = t[j] - 256 end end
  return t
end

local n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local name, amount = ARGV[i], ARGV[i + 1]; i = i + 2
  if redis.call('HEXISTS', KEYS[1], name) == 1 or redis.call('HLEN', KEYS[1]) < max_counters then
    redis.call('HINCRBYFLOAT', KEYS[1], name, amount)
  end
end
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  redis.call('HINCRBYFLOAT', KEYS[5], ARGV[i], ARGV[i + 1]); i = i + 2
end

local recent = redis.call('LRANGE', KEYS[2], 0, -1)
local seen = {}
for _, b in ipairs(recent) do seen[b] = true end
local dups = 0
local counts = {}
n = tonumber(ARGV[i]); i = i + 1
for _ = 1, n do
  local b = ARGV[i]; i = i + 1
  if seen[b] then dups = dups + 1 end
  redis.call('LPUSH', KEYS[2], b)
  counts[#counts + 1] = redis.call('HINCRBY', KEYS[6], b, 1)
end
if n > 0 then
  redis.call('LTRIM', KEYS[2], 0, ring_b - 1)
  redis.call('EXPIRE', KEYS[6], window_ttl)
  if count_dups == 1 then bump('dup', dups); bump('nd', n) end
end

local sketches = redis.call('LRANGE', KEYS[3], 0, -1)
n = tonumber(ARGV[i]); i = i + 1
if close_within >= 0 and n > 0 then
  local refs = {}
  for _, s in ipairs(sketches) do refs[#refs + 1] = dec(s) end
  local close = 0
  for k = 0, n - 1 do
    local v = dec(ARGV[i + k])
    for _, r in ipairs(refs) do
      if #r == #v then
        local d = 0
        for j = 1, #v do local x = r[j] - v[j]; d = d + x * x end
        if d <= close_within then close = close + 1; break end
      end
    end
    refs[#refs + 1] = v
  end
  bump('close', close); bump('nc', n)
end
for _ = 1, n do
  redis.call('LPUSH', KEYS[3], ARGV[i]); i = i + 1
end
if n > 0 then redis.call('LTRIM', KEYS[3], 0, ring_s - 1) end

local function take(key, rate, burst)
  if burst < 0 then return 1 end
  local t = redis.call('HMGET', key, 'tokens', 'stamp')
  local tokens = tonumber(t[1]) or burst
  local stamp = tonumber(t[2]) or now
  tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
  local ok = 0
  if tokens >= cost then tokens = tokens - cost; ok = 1 end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'stamp', tostring(now))
  redis.call('EXPIRE', key, client_ttl)
  return ok
end
local c_ok = take(KEYS[4], c_rate, c_burst)
local g_ok = take(KEYS[7], g_rate, g_burst)

for k = 1, 3 do redis.call('EXPIRE', KEYS[k], client_ttl) end
redis.call('EXPIRE', KEYS[5], client_ttl)
return {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[5]), dups, counts, sketches, c_ok, g_ok}
"""


class RedisState(StateBackend):
    name = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "sas",
        client_ttl: float = 86_400.0,
        window: float = 3_600.0,
        timeout: float = 0.05,
    ) -> None:
        super().__init__(client_ttl=client_ttl, window=window)
        try:
            import redis
        except ImportError as exc:  # the `redis` extra is not installed
            raise StateError(
                "the redis state backend needs the 'redis' package: pip install 'serverless-ai-shield[redis]'"
            ) from exc
        self.prefix = prefix
        # A short socket timeout: a slow store must degrade to local state, not stall the request.
        self._redis: Any = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._script: Any = self._redis.register_script(_SCRIPT)

    def _keys(self, client: str, now: float) -> list[str]:
        p, window = self.prefix, int(now // self.window)
        return [
            f"{p}:c:{client}",
            f"{p}:cb:{client}",
            f"{p}:cs:{client}",
            f"{p}:ct:{client}",
            f"{p}:g",
            f"{p}:gb:{window}",
            f"{p}:gt",
        ]

    def update(self, obs: Observation, now: float) -> StateView:
        args: list[Any] = [
            repr(now),
            int(self.client_ttl),
            int(self.window * 2),
            MAX_COUNTERS,
            RECENT_BUCKETS,
            RECENT_SKETCHES,
            repr(obs.cost),
        ]
        for bucket in (obs.client_bucket, obs.global_bucket):
            args += [repr(bucket.rate), repr(bucket.burst)] if bucket else ["0", "-1"]
        args += [repr(float(obs.close_within)), 1 if obs.count_dups else 0]
        args.append(len(obs.counters))
        for name, amount in obs.counters.items():
            args += [name, repr(float(amount))]
        args.append(len(obs.global_counters))
        for name, amount in obs.global_counters.items():
            args += [name, repr(float(amount))]
        args.append(len(obs.buckets))
        args += list(obs.buckets)
        args.append(len(obs.sketches))
        args += list(obs.sketches)
        try:
            raw = self._script(keys=self._keys(obs.client, now), args=args)
        except self._errors as exc:
            raise StateError(f"redis update failed: {exc}") from exc
        counters, global_counters, dups, counts, sketches, c_ok, g_ok = raw
        return StateView(
            _pairs(counters),
            _pairs(global_counters),
            int(dups),
            [int(c) for c in counts],
            list(reversed(sketches)),  # LPUSH keeps newest first; callers get oldest first
            bool(c_ok),
            bool(g_ok),
        )

    def client_counters(self, client: str) -> Mapping[str, float]:
        try:
            raw = self._redis.hgetall(f"{self.prefix}:c:{client}")
        except self._errors as exc:
            raise StateError(f"redis read failed: {exc}") from exc
        return {k.decode(): float(v) for k, v in raw.items()}

    def reset(self) -> None:
        try:
            keys = list(self._redis.scan_iter(match=f"{self.prefix}:*", count=1000))
            if keys:
                self._redis.delete(*keys)
        except self._errors as exc:
            raise StateError(f"redis reset failed: {exc}") from exc

    def close(self) -> None:
        self._redis.close()


def _pairs(flat: list[bytes]) -> dict[str, float]:
    return {flat[i].decode(): float(flat[i + 1]) for i in range(0, len(flat), 2)}
