"""Declared dependencies from ``pyproject.toml`` (PEP 621, PEP 735 groups, Poetry) and lock files
(``poetry.lock``, ``uv.lock``, ``Pipfile.lock``).

TOML is read with the stdlib ``tomllib`` and JSON with ``json``: no dependency. Neither keeps line numbers, so
a finding's line is where the package's name first appears in the file after its section, which is what a
reviewer looks for anyway.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sas.scan.supply.declared import PYPI_SIMPLE, Declared, line_of

LOCK_NAMES = frozenset({"poetry.lock", "uv.lock", "pipfile.lock"})


@dataclass
class Manifest:
    """What one pyproject or lock file declares. ``sources`` are (name, url, line) of configured indexes."""

    path: str
    kind: str
    dependencies: list[Declared] = field(default_factory=list)
    sources: list[tuple[str, str, int]] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)


def parse(name: str, text: str, path: str) -> Manifest:
    """Parse a pyproject/lock file by its name; a malformed file gives a ``problems`` entry, never an exception."""
    lower = name.lower()
    kind = "Pipfile.lock" if lower == "pipfile.lock" else lower
    manifest = Manifest(path, kind)
    try:
        if lower == "pipfile.lock":
            _pipfile_lock(json.loads(text), text, manifest)
        else:
            data = tomllib.loads(text)
            if lower == "pyproject.toml":
                _pyproject(data, text, manifest)
            elif lower == "poetry.lock":
                _poetry_lock(data, text, manifest)
            elif lower == "uv.lock":
                _uv_lock(data, text, manifest)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        manifest.problems.append((getattr(exc, "lineno", 1) or 1, f"cannot parse {name}: {exc}"))
    except (TypeError, AttributeError, KeyError, ValueError) as exc:  # valid syntax, unexpected shape
        manifest.problems.append((1, f"unexpected structure in {name}: {exc}"))
    except (RecursionError, MemoryError) as exc:  # hostile nesting
        manifest.problems.append((1, f"cannot parse {name}: {type(exc).__name__}"))
    return manifest


def _table(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _pep508(items: Iterable[Any], text: str, path: str, anchor: int, out: list[Declared]) -> None:
    from packaging.requirements import InvalidRequirement, Requirement  # ~15 ms: only once a lockfile is read

    for item in items:
        if not isinstance(item, str):
            continue
        try:
            req = Requirement(item)
        except InvalidRequirement:
            continue
        specs = list(req.specifier)
        pinned = specs[0].version if len(specs) == 1 and specs[0].operator in ("==", "===") else None
        out.append(
            Declared(
                name=req.name,
                path=path,
                line=line_of(text, f'"{item}', anchor) if f'"{item}' in text else line_of(text, req.name, anchor),
                source="pyproject",
                specifier=str(req.specifier),
                version=pinned if pinned and "*" not in pinned else None,
                url=req.url or "",
                markers=str(req.marker) if req.marker else "",
            )
        )


def _pyproject(data: Mapping[str, Any], text: str, m: Manifest) -> None:
    project = _table(data.get("project"))
    anchor = max(text.find("[project]"), 0)
    _pep508(project.get("dependencies", []) or [], text, m.path, anchor, m.dependencies)
    for group in _table(project.get("optional-dependencies")).values():
        _pep508(group if isinstance(group, list) else [], text, m.path, anchor, m.dependencies)
    for group in _table(data.get("dependency-groups")).values():
        _pep508(group if isinstance(group, list) else [], text, m.path, anchor, m.dependencies)
    tool = _table(data.get("tool"))
    poetry = _table(tool.get("poetry"))
    tables = [_table(poetry.get("dependencies")), _table(poetry.get("dev-dependencies"))]
    tables += [_table(_table(g).get("dependencies")) for g in _table(poetry.get("group")).values()]
    poetry_anchor = max(text.find("[tool.poetry"), 0)
    for table in tables:
        for name, spec in table.items():
            if name.lower() == "python":
                continue
            m.dependencies.append(_poetry_dependency(name, spec, text, m.path, poetry_anchor))
    primary = False
    for source in poetry.get("source", []) or []:
        if isinstance(source, Mapping) and isinstance(source.get("url"), str):
            m.sources.append((str(source.get("name", "")), source["url"], line_of(text, source["url"])))
            primary = (
                primary or source.get("priority", "primary") in ("primary", "default") or bool(source.get("default"))
            )
    if poetry.get("source") and not primary:
        # Poetry keeps PyPI as the primary source unless a source is primary (or the old "default")
        m.sources.append(("pypi (implicit)", PYPI_SIMPLE, 0))
    uv = _table(tool.get("uv"))
    for index in uv.get("index", []) or []:
        if isinstance(index, Mapping) and isinstance(index.get("url"), str):
            m.sources.append((str(index.get("name", "")), index["url"], line_of(text, index["url"])))
    for key in ("index-url", "extra-index-url"):
        urls = uv.get(key)
        for url in [urls] if isinstance(urls, str) else (urls or []):
            if isinstance(url, str):
                m.sources.append((key, url, line_of(text, url)))
    uv_sources = {k.lower() for k, v in _table(uv.get("sources")).items() if isinstance(v, Mapping) and "index" in v}
    if uv_sources:
        m.dependencies = [_with_explicit_source(d) if d.name.lower() in uv_sources else d for d in m.dependencies]


def _with_explicit_source(d: Declared) -> Declared:
    from dataclasses import replace

    return replace(d, explicit_source=True)


def _poetry_dependency(name: str, spec: Any, text: str, path: str, anchor: int) -> Declared:
    line = line_of(text, f"\n{name} ", anchor) + 1 if f"\n{name} " in text[anchor:] else line_of(text, name, anchor)
    url = ""
    explicit = False
    version = ""
    if isinstance(spec, str):
        version = spec
    elif isinstance(spec, Mapping):
        version = str(spec.get("version", ""))
        for key in ("git", "url", "path"):
            if isinstance(spec.get(key), str):
                url = spec[key]
        explicit = isinstance(spec.get("source"), str)
    elif isinstance(spec, list):  # multiple-constraint dependency: treat as a range
        version = ",".join(str(_table(s).get("version", "")) for s in spec)
    v = version.strip()
    pinned = v.lstrip("=") if v and (v[0].isdigit() or v.startswith("==")) and "*" not in v and "," not in v else None
    return Declared(
        name=name,
        path=path,
        line=line,
        source="pyproject",
        specifier=v,
        version=pinned,
        url=url,
        explicit_source=explicit,
    )


def _poetry_lock(data: Mapping[str, Any], text: str, m: Manifest) -> None:
    metadata_files = _table(_table(data.get("metadata")).get("files"))
    offset = 0
    for package in data.get("package", []) or []:
        pkg = _table(package)
        name, version = str(pkg.get("name", "")), str(pkg.get("version", ""))
        if not name:
            continue
        at = text.find(f'name = "{name}"', offset)
        offset = max(at, offset)
        source = _table(pkg.get("source"))
        files = pkg.get("files") or metadata_files.get(name) or []
        hashes = tuple(str(_table(f).get("hash", "")) for f in files if _table(f).get("hash"))
        url = str(source.get("url", "")) if source.get("type") in ("git", "url", "file", "directory") else ""
        index = str(source.get("url")) if source.get("type") == "legacy" else (None if source else PYPI_SIMPLE)
        m.dependencies.append(
            Declared(
                name=name,
                path=m.path,
                line=line_of(text, f'name = "{name}"', max(at, 0)) if at >= 0 else 1,
                source="poetry.lock",
                specifier=f"=={version}",
                version=version or None,
                hashes=hashes,
                url=url,
                index=index,
            )
        )


def _uv_lock(data: Mapping[str, Any], text: str, m: Manifest) -> None:
    offset = 0
    for package in data.get("package", []) or []:
        pkg = _table(package)
        name, version = str(pkg.get("name", "")), str(pkg.get("version", ""))
        if not name:
            continue
        at = text.find(f'name = "{name}"', offset)
        offset = max(at, offset)
        source = _table(pkg.get("source"))
        if "editable" in source or "virtual" in source:  # the project itself
            continue
        hashes = [str(_table(pkg.get("sdist")).get("hash", ""))]
        hashes += [str(_table(w).get("hash", "")) for w in pkg.get("wheels", []) or []]
        url = next((str(source[k]) for k in ("git", "url", "path", "directory") if k in source), "")
        registry = source.get("registry")
        m.dependencies.append(
            Declared(
                name=name,
                path=m.path,
                line=line_of(text, f'name = "{name}"', max(at, 0)) if at >= 0 else 1,
                source="uv.lock",
                specifier=f"=={version}",
                version=version or None,
                hashes=tuple(h for h in hashes if h),
                url=url,
                index=str(registry) if isinstance(registry, str) else None,
            )
        )


def _pipfile_lock(data: Mapping[str, Any], text: str, m: Manifest) -> None:
    meta = _table(data.get("_meta"))
    names: dict[str, str] = {}
    for source in meta.get("sources", []) or []:
        src = _table(source)
        if isinstance(src.get("url"), str):
            names[str(src.get("name", ""))] = src["url"]
            m.sources.append((str(src.get("name", "")), src["url"], line_of(text, src["url"])))
    for section in ("default", "develop"):
        anchor = max(text.find(f'"{section}"'), 0)
        for name, entry in _table(data.get(section)).items():
            e = _table(entry)
            spec = str(e.get("version", ""))
            version = spec[2:] if spec.startswith("==") else None
            index = e.get("index")
            url = next((str(e[k]) for k in ("git", "file", "path") if isinstance(e.get(k), str)), "")
            m.dependencies.append(
                Declared(
                    name=name,
                    path=m.path,
                    line=line_of(text, f'"{name}"', anchor),
                    source="Pipfile.lock",
                    specifier=spec,
                    version=version,
                    hashes=tuple(str(h) for h in e.get("hashes", []) or []),
                    url=url,
                    index=names.get(str(index), str(index)) if isinstance(index, str) else None,
                    explicit_source=isinstance(index, str) and index != "pypi",
                )
            )
