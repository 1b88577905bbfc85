"""Scan settings: resource limits and policy, read from the ``[scan]`` table of the configuration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from sas.config import section, string_list
from sas.errors import ConfigError
from sas.taxonomy import Severity

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    """Defences against hostile archives; crossing one is a finding, never an out-of-memory."""

    max_total_bytes: int = 8 * 1024 * MiB  # bytes decompressed from archives and streams in the whole scan
    max_file_bytes: int = 4 * 1024 * MiB  # one file's uncompressed size
    max_ratio: float = 200.0  # uncompressed/compressed for one archive member above ``ratio_floor``
    ratio_floor: int = 8 * MiB  # small members may compress well; only judge ratio above this size
    max_members: int = 200_000  # entries in one archive
    max_depth: int = 4  # nested archives inside the target
    spool_bytes: int = 32 * MiB  # open_seekable(): memory buffer up to this size, anonymous temp file above


@dataclass(frozen=True, slots=True)
class ScanSettings:
    limits: Limits = field(default_factory=Limits)
    fail_on: Severity = Severity.HIGH
    pickle_allow: tuple[str, ...] = ()  # extra "module.name" globals (or "module.*") the user trusts
    pickle_deny: tuple[str, ...] = ()
    ignore_rules: tuple[str, ...] = ()
    layers: tuple[str, ...] = ()  # Lambda layers scanned with the function (``--layer``)
    vuln_db: str | None = None  # OSV database folder or zip (``--vuln-db``)
    baseline: str | None = None  # suppression baseline file (``--baseline``)
    raw: Mapping[str, Any] = field(default_factory=dict)  # the whole configuration, for analyzers' own sections

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ScanSettings:
        scan = section(config, "scan")
        limits = Limits()
        for key, value in section(config, "scan", "limits").items():
            if key not in Limits.__dataclass_fields__:
                raise ConfigError(f"[scan.limits] unknown key {key!r}")
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"[scan.limits] {key} must be a positive number")
            limits = replace(limits, **{key: value})  # type: ignore[arg-type]
        fail_on = Severity.HIGH
        if "fail_on" in scan:
            try:
                fail_on = Severity.parse(str(scan["fail_on"]))
            except ValueError as exc:
                raise ConfigError(f"[scan] fail_on: {exc}") from None
        pickle = section(config, "scan", "pickle")
        return cls(
            limits=limits,
            fail_on=fail_on,
            pickle_allow=string_list(pickle, "allow", "scan.pickle"),
            pickle_deny=string_list(pickle, "deny", "scan.pickle"),
            ignore_rules=string_list(scan, "ignore", "scan"),
            raw=config,
        )
