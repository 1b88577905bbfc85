"""One configuration model for all layers.

Sources, strongest first: an explicit argument (a dict or path handed to the API or CLI), an environment
variable (names in ``ENV``), the configuration file (``sas.toml``, or ``[tool.sas]`` in ``pyproject.toml``),
then the defaults below. Configuration is plain nested dicts validated section by section, so that
``Shield(dict)`` and ``Shield.from_config(path)`` take the same shape. The stdlib ``tomllib`` reads files:
no dependency, and it loads in every cold start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sas.errors import ConfigError

if TYPE_CHECKING:
    # imported by the two functions that read files: ``Shield(dict)`` reads none, and pathlib (with the
    # urllib.parse and ipaddress it loads) costs ~2 ms of a cold start
    from pathlib import Path

# Every environment variable sas reads, in one place.
ENV: dict[str, str] = {
    "config": "SAS_CONFIG",  # path of the configuration file
    "mode": "SAS_MODE",  # runtime mode: monitor | enforce
    "ledger": "SAS_LEDGER",  # forensics ledger sink: stdout | jsonl:PATH | sqlite:PATH
    "state": "SAS_STATE",  # ML detector state backend: memory | sqlite:PATH | redis://...
    "detector_key": "SAS_DETECTOR_KEY",  # secret for keyed projections/hashes, shared by every instance
    "key": "SAS_SIGNING_KEY",  # path of the Ed25519 private key for checkpoints
    "manifest": "SAS_MANIFEST",  # path of the signed integrity manifest to verify at cold start
    "manifest_pub": "SAS_MANIFEST_PUB",  # path of the manifest public key
    "no_progress": "SAS_NO_PROGRESS",  # any value: never draw a progress line
    "anchor": "SAS_ANCHOR",  # ledger anchor store: sqlite:PATH | redis://HOST:PORT/DB
    "checkpoint_every": "SAS_CHECKPOINT_EVERY",  # ledger: sign a checkpoint every N events (default 1000)
    "checkpoint_seconds": "SAS_CHECKPOINT_SECONDS",  # ledger: and at most T seconds after the oldest unsigned one
}

CONFIG_FILE_NAMES = ("sas.toml", ".sas.toml")

Config = dict[str, Any]


def load_file(path: str | os.PathLike[str]) -> Config:
    """Read ``sas.toml`` or the ``[tool.sas]`` table of a ``pyproject.toml``."""
    from pathlib import Path

    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read configuration {p}: {exc.strerror or exc}") from None
    import tomllib  # here, not at module level: compiling its regexes costs tens of ms of every cold start

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"invalid TOML in {p}: {exc}") from None
    if p.name == "pyproject.toml":
        tool = data.get("tool", {})
        section = tool.get("sas", {}) if isinstance(tool, dict) else {}
        if not isinstance(section, dict):
            raise ConfigError(f"{p}: [tool.sas] must be a table")
        return section
    return data


def discover(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The configuration file in effect: ``$SAS_CONFIG``, else ``sas.toml``/``pyproject.toml`` in ``start``."""
    from pathlib import Path

    env = os.environ.get(ENV["config"])
    if env:
        return Path(env)
    base = Path(start) if start is not None else Path.cwd()
    if base.is_file():
        base = base.parent
    for name in CONFIG_FILE_NAMES:
        if (base / name).is_file():
            return base / name
    pyproject = base / "pyproject.toml"
    if pyproject.is_file():
        import tomllib

        try:
            if "sas" in tomllib.loads(pyproject.read_text("utf-8")).get("tool", {}):
                return pyproject
        except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError):
            return None
    return None


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> Config:
    """Deep-merge ``override`` onto ``base`` (tables merge, everything else replaces)."""
    out: Config = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def section(config: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    """A nested table, ``{}`` when absent; a non-table value is a configuration error."""
    node: Any = config
    for name in path:
        node = node.get(name, {}) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping):
            raise ConfigError(f"[{'.'.join(path)}] must be a table")
    result: Mapping[str, Any] = node
    return result


def string_list(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"[{where}] {key} must be a list of strings")
    return tuple(value)
