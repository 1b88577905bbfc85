"""The supply-chain analyzer: declared dependencies, vendored code and layers, in one pass over the tree.

During the walk every file is hashed once (sha256, streamed in 1 MiB chunks, never held whole) and the
small files the checks need are kept as text (RECORD, METADATA headers, ``.pth``, requirements, pyproject and
lock files, templates). Everything that compares files with each other happens in :meth:`finish`:
RECORD verification, start-up hooks, the merged import view of function and layers, obfuscation checks,
declared dependencies and the OSV look-up.

Obfuscation checks read only the Python files that no RECORD vouches for (unlisted, modified, metadata-less,
the function's own code): a file whose hash matches its distribution's RECORD is exactly what its publisher
shipped, and re-reading hundreds of megabytes of verified numpy/scipy source would cost seconds for nothing.
Set ``[scan.supply] inspect_verified = true`` to read those too.

Configuration (``[scan.supply]``): ``internal_packages`` (names or ``fnmatch`` patterns of private packages,
for dependency confusion), ``inspect_verified``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import sys
import zipfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from sas.config import string_list
from sas.scan.analyzer import Analyzer
from sas.scan.artifact import VirtualFile
from sas.scan.context import ScanContext
from sas.scan.findings import Component, Location, make_finding
from sas.scan.rules import Rule
from sas.scan.supply import layers, lockfiles, obfuscation, requirements, startup_hooks, typosquat, vendored
from sas.scan.supply import rules as R
from sas.scan.supply.declared import Declared, is_public_index
from sas.taxonomy import Severity

_CHUNK = 1024 * 1024
_TEXT_LIMIT = 256 * 1024
_MANIFEST_LIMIT = 16 * 1024 * 1024
_SOURCE_LIMIT = 4 * 1024 * 1024
_STDLIB_EXEMPT = frozenset({"test", "idlelib", "turtledemo", "this", "antigravity", "__future__", "__main__"})


@dataclass(slots=True)
class _Seen:
    path: str
    size: int
    digest: bytes | None  # sha256, computed in finish() only for files a check compares
    depth: int
    source: VirtualFile  # read again after the walk (the walker supports late reads of archive members)


class SupplyChainAnalyzer(Analyzer):
    name = "supply-chain"

    def __init__(self) -> None:
        self.files: dict[str, _Seen] = {}
        self.records: dict[str, str] = {}
        self.metadata: dict[str, tuple[str, str]] = {}
        self.texts: dict[str, str] = {}
        self.top_level: list[str] = []  # depth-0 files of the function target (not layers)
        self._reported: set[tuple[str, str, int | None, str]] = set()

    # -- the walk ---------------------------------------------------------------------------------------------

    def claims(self, file: VirtualFile) -> bool:
        return True  # every file is hashed: RECORD verification needs them all

    def analyze(self, file: VirtualFile, ctx: ScanContext) -> bool:
        inner = file.inner_path
        name = file.name
        lower = name.lower()
        if file.depth == 0 and not file.path.startswith("layer:"):
            self.top_level.append(file.path)
        seen = _Seen(file.path, file.size, None, file.depth, file)
        self.files[file.path] = seen
        if _wants_text(inner, lower, file.size):
            digest = hashlib.sha256()
            kept: list[bytes] = []
            with file.open() as stream:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    kept.append(chunk)
            seen.digest = digest.digest()
            data = b"".join(kept)
            if lower == "metadata":
                self.metadata[_parent(file.path)] = vendored.parse_metadata_headers(data[:65536])
            elif lower == "record":
                self.records[file.path] = data.decode("utf-8", "replace")
            else:
                self.texts[file.path] = data.decode("utf-8", "replace")
        return False

    def _add(
        self,
        ctx: ScanContext,
        rule: Rule,
        location: Location | str,
        message: str,
        *,
        evidence: str = "",
        severity: Severity | None = None,
    ) -> None:
        """Report once per rule, place and evidence: function roots of one template share their layers."""
        loc = Location(location) if isinstance(location, str) else location
        key = (rule.id, loc.path, loc.line, evidence)
        if key not in self._reported:
            self._reported.add(key)
            _add(ctx, rule, loc, message, evidence=evidence, severity=severity)

    # -- after the walk ---------------------------------------------------------------------------------------

    def finish(self, ctx: ScanContext) -> None:
        options = _options(ctx.settings.raw)
        roots = self._roots(ctx)
        dists = self._distributions(ctx)
        owned: dict[str, tuple[vendored.Distribution, vendored.RecordEntry]] = {}
        for dist in dists:
            for entry in dist.entries:
                owned.setdefault(_member(dist.site, entry.rel), (dist, entry))
        needed = {path for path, (_dist, entry) in owned.items() if entry.algorithm == "sha256"}
        if any(r.kind == "layer" for r in roots):  # shadowing compares contents across roots
            needed |= {
                p for files in _files_by_root(self.files, roots).values() for p in (s.path for s in files.values())
            }
        self._hash(ctx, needed)
        verified = self._verify(ctx, dists, owned)
        declared: list[Declared] = []
        phases: list[tuple[str, Callable[[], object]]] = [
            ("start-up hooks", lambda: self._hooks(ctx, roots, dists, owned, verified)),
            ("layer import view", lambda: self._import_view(ctx, roots, owned)),
            (
                "code checks",
                lambda: self._inspect_sources(ctx, verified, inspect_all=bool(options.get("inspect_verified"))),
            ),
            ("declared dependencies", lambda: declared.extend(self._declared(ctx, dists, options))),
        ]
        for phase, run in phases:
            try:
                run()
            except (RecursionError, MemoryError, ValueError, OSError) as exc:  # hostile input must not hide the rest
                ctx.error(self.name, f"{phase} stopped early: {type(exc).__name__}: {exc}")
        self._vulnerabilities(ctx, dists, declared)

    def _hash(self, ctx: ScanContext, paths: set[str]) -> None:
        """sha256 of the files a check compares, streamed, in parallel (zlib and hashlib release the GIL).

        Files on disk are read through their own openers. Members of a zip that sits on disk are read by worker
        threads, each with its own handle on the archive (the walker's shared handle is not thread-safe), but only
        when the member's recorded sizes are within the scan limits; anything else goes through the walker's
        opener, one at a time, where its byte budget applies.
        """
        todo = [self.files[p] for p in sorted(paths) if p in self.files and self.files[p].digest is None]
        on_disk = [s for s in todo if s.depth == 0]
        by_archive: dict[str, list[_Seen]] = {}
        sequential: list[_Seen] = []
        for seen in todo:
            if seen.depth != 1:
                continue
            container = seen.path.rsplit("!", 1)[0]
            outer = self.files.get(container)
            if outer is not None and outer.depth == 0 and outer.source.head.startswith(b"PK\x03\x04"):
                by_archive.setdefault(container, []).append(seen)
            else:
                sequential.append(seen)
        sequential += [s for s in todo if s.depth > 1]
        limits = ctx.settings.limits

        def digest(seen: _Seen) -> tuple[_Seen, bytes | None, str]:
            h = hashlib.sha256()
            try:
                with seen.source.open() as stream:
                    while chunk := stream.read(_CHUNK):
                        h.update(chunk)
            except (OSError, ValueError, EOFError) as exc:
                return seen, None, str(exc)
            return seen, h.digest(), ""

        def digest_members(container: str, batch: list[_Seen]) -> list[tuple[_Seen, bytes | None, str]]:
            out: list[tuple[_Seen, bytes | None, str]] = []
            try:
                with self.files[container].source.open() as raw, zipfile.ZipFile(raw) as archive:
                    for seen in batch:
                        try:
                            info = archive.getinfo(seen.path.rsplit("!", 1)[1])
                        except KeyError:
                            out.append(digest(seen))
                            continue
                        ratio = info.file_size / max(info.compress_size, 1)
                        if info.file_size > limits.max_file_bytes or (
                            info.file_size > limits.ratio_floor and ratio > limits.max_ratio
                        ):
                            out.append(digest(seen))
                            continue
                        h = hashlib.sha256()
                        with archive.open(info) as stream:
                            while chunk := stream.read(_CHUNK):
                                h.update(chunk)
                        out.append((seen, h.digest(), ""))
            except (OSError, ValueError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError):
                done = {id(r[0]) for r in out}
                out += [digest(s) for s in batch if id(s) not in done]
            return out

        workers = max(1, min(4, os.cpu_count() or 1))
        results: list[tuple[_Seen, bytes | None, str]] = []
        with ThreadPoolExecutor(max_workers=workers) as pool:
            if on_disk:
                results += pool.map(digest, on_disk)
            jobs = [
                pool.submit(digest_members, container, members[i::workers])
                for container, members in by_archive.items()
                for i in range(workers)
            ]
            for job in jobs:
                results += job.result()
        results += [digest(s) for s in sequential]
        for seen, value, error in results:
            if value is None:
                ctx.error(seen.path, f"cannot read to verify its hash: {error}")
            seen.digest = value

    # roots ----------------------------------------------------------------------------------------------------

    def _roots(self, ctx: ScanContext) -> list[layers.Root]:
        roots: list[layers.Root] = []
        template_layers: list[str] = []
        function_dirs: list[str] = []
        for path, text in self.texts.items():
            if path.rsplit("/", 1)[-1].lower() in layers.TEMPLATE_NAMES and "!" not in path:
                folder = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
                found_layers, found_functions = layers.template_roots(text, folder)
                template_layers += [p for p in found_layers if p not in template_layers]
                function_dirs += [p for p in found_functions if p not in function_dirs]
        for order, prefix in enumerate(template_layers):
            roots.append(layers.Root("layer", f"layer folder {prefix.rstrip('/')}", prefix, order))
        base = len(template_layers)
        for order, layer in enumerate(ctx.settings.layers):
            label = layer.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
            roots.append(layers.Root("layer", f"layer {label}", f"layer:{label}!", base + order))
        if function_dirs:
            roots += [layers.Root("function", f"function {p.rstrip('/')}", p) for p in function_dirs]
        elif len(self.top_level) == 1 and any(p.startswith(self.top_level[0] + "!") for p in self.files):
            roots.append(layers.Root("function", "function", self.top_level[0] + "!"))
        else:
            roots.append(layers.Root("function", "function", ""))
        return roots

    # distributions and RECORD ----------------------------------------------------------------------------------

    def _distributions(self, ctx: ScanContext) -> list[vendored.Distribution]:
        folders = {_parent(p) for p in self.records} | set(self.metadata)
        dists: list[vendored.Distribution] = []
        for folder in sorted(folders):
            container, inner = vendored.split_display(folder)
            site_inner = posixpath.dirname(inner)
            site = container + (site_inner + "/" if site_inner else "")
            name, version = self.metadata.get(folder, ("", ""))
            fallback_name, fallback_version = vendored.dist_from_dir_name(folder)
            dist = vendored.Distribution(folder, site, name or fallback_name, version or fallback_version)
            record = self.records.get(folder + "/RECORD")
            if record is not None:
                vendored.parse_record(record, dist)
            dists.append(dist)
            purl_name = typosquat.normalize(dist.name)
            ctx.component(
                Component(
                    kind="python-package",
                    name=dist.name,
                    version=dist.version,
                    path=folder,
                    purl=f"pkg:pypi/{purl_name}@{dist.version}" if dist.version else f"pkg:pypi/{purl_name}",
                )
            )
            if not dist.has_record:
                self._add(
                    ctx,
                    R.RECORD_PROBLEM,
                    folder,
                    f"{dist.name} {dist.version} has no RECORD: its files cannot be verified",
                    evidence=f"{dist.name}=={dist.version}",
                )
            for problem in dist.problems[:3]:
                self._add(ctx, R.RECORD_PROBLEM, folder + "/RECORD", f"{dist.name}: {problem}", evidence=problem)
            match = typosquat.default_index().check(dist.name)
            if match:
                self._add(
                    ctx,
                    R.TYPOSQUAT,
                    folder,
                    f"installed distribution {dist.name!r} imitates {match.target!r} ({match.how})",
                    evidence=f"{dist.name} ~ {match.target}",
                    severity=None,
                )
        return dists

    def _verify(
        self,
        ctx: ScanContext,
        dists: list[vendored.Distribution],
        owned: Mapping[str, tuple[vendored.Distribution, vendored.RecordEntry]],
    ) -> set[str]:
        verified: set[str] = set()
        for dist in dists:
            missing_minor: list[str] = []
            for entry in dist.entries:
                if entry.rel.startswith("../"):
                    continue  # scripts and data outside the site folder: not part of the import tree
                path = _member(dist.site, entry.rel)
                seen = self.files.get(path)
                if seen is None:
                    if vendored.is_code(entry.rel) and not vendored.is_slimmable(entry.rel):
                        self._add(
                            ctx,
                            R.MISSING,
                            path,
                            f"{entry.rel} of {dist.name} {dist.version} is listed in RECORD "
                            "but missing; a module of that name elsewhere on sys.path would be imported instead",
                            evidence=f"{dist.name}:{entry.rel}",
                            severity=Severity.HIGH,
                        )
                    else:
                        missing_minor.append(entry.rel)
                    continue
                if entry.algorithm != "sha256":
                    continue
                if seen.digest == entry.digest:
                    verified.add(path)
                    continue
                code = vendored.is_code(entry.rel)
                self._add(
                    ctx,
                    R.MODIFIED,
                    path,
                    f"{entry.rel} of {dist.name} {dist.version} does not match its RECORD "
                    f"hash{' (code)' if code else ''}",
                    evidence=f"{dist.name}:{entry.rel}",
                    severity=Severity.HIGH if code else Severity.MEDIUM,
                )
            if missing_minor:
                self._add(
                    ctx,
                    R.MISSING,
                    dist.dist_info,
                    f"{len(missing_minor)} file(s) of {dist.name} {dist.version} "
                    f"listed in RECORD are missing (tests, stubs, byte-code or data), e.g. {missing_minor[0]}",
                    evidence=f"{dist.name}:missing:{len(missing_minor)}",
                )
        # unlisted files inside each distribution's own package folders
        by_site: dict[str, set[str]] = {}
        for dist in dists:
            by_site.setdefault(dist.site, set()).update(dist.top_dirs)
        for site, tops in by_site.items():
            minor: dict[str, list[str]] = {}
            for path in self.files:
                if not path.startswith(site):
                    continue
                rel = path[len(site) :]
                if "!" in rel or "/" not in rel or rel.split("/", 1)[0] not in tops or path in owned:
                    continue
                top = rel.split("/", 1)[0]
                if rel.endswith(".pyc") or "/__pycache__/" in f"/{rel}":
                    minor.setdefault(top, []).append(rel)
                elif vendored.is_code(rel):
                    self._add(
                        ctx,
                        R.UNLISTED,
                        path,
                        f"{rel} is inside the installed package {top!r} but no RECORD lists "
                        "it: code added after installation",
                        evidence=rel,
                    )
                else:
                    self._add(
                        ctx,
                        R.UNLISTED,
                        path,
                        f"{rel} is inside the installed package {top!r} but no RECORD lists it",
                        evidence=rel,
                        severity=Severity.MEDIUM,
                    )
            for top, rels in minor.items():
                self._add(
                    ctx,
                    R.UNLISTED,
                    site + top,
                    f"{len(rels)} byte-code file(s) in {top!r} are not in any RECORD "
                    f"(e.g. {rels[0]}); Python runs a .pyc instead of its source when the stamp matches",
                    evidence=f"{top}:pyc:{len(rels)}",
                    severity=Severity.LOW,
                )
        return verified

    # start-up hooks ---------------------------------------------------------------------------------------------

    def _hooks(
        self,
        ctx: ScanContext,
        roots: list[layers.Root],
        dists: list[vendored.Distribution],
        owned: Mapping[str, tuple[vendored.Distribution, vendored.RecordEntry]],
        verified: set[str],
    ) -> None:
        folders = {d.site for d in dists}
        for root, rel_files in _files_by_root(self.files, roots).items():
            for folder in layers.search_folders(root, rel_files):
                folders.add(root.prefix + folder)
        ordered = sorted(folders, key=len, reverse=True)
        for path in self.files:
            where = next((f for f in ordered if path.startswith(f)), None)
            if where is None:
                continue
            rel = path[len(where) :]
            if "!" in rel:
                continue
            if rel.endswith(".pth"):
                # also outside site folders: a package may be deployed as a layer or container image later
                self._pth(ctx, path, rel.rsplit("/", 1)[-1], owned, verified)
            elif startup_hooks.is_customize_module(rel):
                vouched = path in verified
                self._add(
                    ctx,
                    R.CUSTOMIZE,
                    path,
                    f"{rel} runs at every interpreter start-up"
                    + (f" (installed by {owned[path][0].name}, hash verified)" if vouched else ""),
                    evidence=rel,
                    severity=Severity.MEDIUM if vouched else None,
                )

    def _pth(
        self,
        ctx: ScanContext,
        path: str,
        name: str,
        owned: Mapping[str, tuple[vendored.Distribution, vendored.RecordEntry]],
        verified: set[str],
    ) -> None:
        text = self.texts.get(path, "")
        found = startup_hooks.analyze_pth(name, text)
        for line, entry in found.writable_paths:
            self._add(
                ctx,
                R.PTH_HOOK,
                Location(path, line),
                f"{name} adds {entry!r} to sys.path: a writable folder, so "
                "code written there at run time is importable",
                evidence=entry,
            )
        if not found.executable:
            return
        line, first = found.executable[0]
        vouched = path in verified
        if found.known and vouched:
            return  # the ordinary hook its distribution installed, unchanged
        if found.known:
            severity = Severity.LOW
            detail = f"{found.known} hook with no verified RECORD behind it"
        elif vouched:
            severity = Severity.MEDIUM
            detail = f"installed by {owned[path][0].name} (hash verified); review what it runs"
        else:
            severity = Severity.HIGH
            detail = "not an ordinary setuptools/namespace/editable hook, and no RECORD vouches for it"
        payload = obfuscation.inspect_source("\n".join(t for _, t in found.executable).encode())
        if any(s.kind == "decode-exec" for s in payload):
            severity, detail = Severity.CRITICAL, detail + "; it decodes and executes a hidden payload"
        self._add(
            ctx,
            R.PTH_HOOK,
            Location(path, line),
            f"{name} runs code at every interpreter start: {detail}",
            evidence=first[:160],
            severity=severity,
        )

    # merged import view -------------------------------------------------------------------------------------------

    def _import_view(
        self,
        ctx: ScanContext,
        roots: list[layers.Root],
        owned: Mapping[str, tuple[vendored.Distribution, vendored.RecordEntry]],
    ) -> None:
        by_root = _files_by_root(self.files, roots)
        layer_roots = sorted((r for r in roots if r.kind == "layer"), key=lambda r: r.order)
        merged: dict[str, tuple[layers.Root, _Seen]] = {}
        for root in layer_roots:
            for rel, seen in by_root.get(root, {}).items():
                earlier = merged.get(rel)
                if earlier is not None and earlier[1].digest != seen.digest and earlier[0] != root:
                    code = vendored.is_code(rel)
                    self._add(
                        ctx,
                        R.LAYER_OVERWRITES,
                        seen.path,
                        f"{root.label} replaces {earlier[1].path} (/opt/{rel}) with different content",
                        evidence=f"/opt/{rel}",
                        severity=Severity.HIGH if code else Severity.MEDIUM,
                    )
                merged[rel] = (root, seen)
        opt_folders = layers.search_folders(layers.Root("layer", "", ""), merged) if merged else []
        opt_views: list[tuple[str, dict[str, tuple[str, bytes, layers.Root]]]] = []
        for folder in opt_folders:
            view: dict[str, tuple[str, bytes, layers.Root]] = {}
            for rel, (root, seen) in merged.items():
                if rel.startswith(folder):
                    sub = rel[len(folder) :]
                    if folder == "python/" and sub.startswith("lib/python3"):
                        continue
                    view[sub] = (seen.path, seen.digest or b"", root)
            opt_views.append((folder, view))
            self._mixed_packages(ctx, view)
        for function in (r for r in roots if r.kind == "function"):
            files = by_root.get(function, {})
            folders = [(function.prefix, {rel: (s.path, s.digest or b"", function) for rel, s in files.items()})]
            folders += [("/opt/" + folder, view) for folder, view in opt_views]
            for shadow in layers.resolve(folders):
                self._report_shadow(ctx, shadow)
            self._names(ctx, folders, owned)

    def _mixed_packages(self, ctx: ScanContext, view: Mapping[str, tuple[str, bytes, layers.Root]]) -> None:
        """A later layer adding modules into a package folder another layer provides."""
        owners: dict[str, dict[layers.Root, str]] = {}
        for sub, (display, _digest, root) in view.items():
            found = layers.top_level(sub)
            if found is not None and "/" in sub:
                owners.setdefault(found[0], {}).setdefault(root, display)
        for name, by_layer in owners.items():
            if len(by_layer) < 2:
                continue
            first, *later = sorted(by_layer, key=lambda r: r.order)
            for root in later:
                self._add(
                    ctx,
                    R.LAYER_OVERWRITES,
                    by_layer[root],
                    f"{root.label} adds files into package {name!r} that "
                    f"{first.label} provides: they are merged into one folder in /opt",
                    evidence=f"{name}:{root.label}",
                )

    def _report_shadow(self, ctx: ScanContext, s: layers.Shadow) -> None:
        w, loser = s.winner, s.loser
        what = {"module": "module", "package": "package", "namespace": "folder (namespace package)"}
        if w.root.kind == "layer":
            how = (
                "is found first on sys.path"
                if not s.namespace_takeover
                else f"wins although it comes later on sys.path, because {loser.folder}{s.name}/ has no __init__.py "
                "(PEP 420)"
            )
            self._add(
                ctx,
                R.LAYER_SHADOWS,
                w.key_path,
                f"{w.root.label}'s {what[w.kind]} {s.name!r} {how}: it is "
                f"imported instead of the {what[loser.kind]} in {loser.root.label} ({loser.key_path})",
                evidence=f"{s.name}:{w.root.label}>{loser.root.label}",
            )
        elif loser.root.kind == "layer":
            self._add(
                ctx,
                R.LAYER_UNUSED_COPY,
                loser.key_path,
                f"{s.name!r} from {loser.root.label} is never imported: "
                f"the function's own copy ({w.key_path}) comes first and differs",
                evidence=f"{s.name}:{loser.root.label}",
            )

    def _names(
        self,
        ctx: ScanContext,
        folders: list[tuple[str, dict[str, tuple[str, bytes, layers.Root]]]],
        owned: Mapping[str, tuple[vendored.Distribution, vendored.RecordEntry]],
    ) -> None:
        stdlib: frozenset[str] = getattr(sys, "stdlib_module_names", frozenset())
        index = typosquat.import_index()
        for _prefix, files in folders:
            names: dict[tuple[str, layers.Root], list[str]] = {}
            for rel, (display, _digest, root) in files.items():
                found = layers.top_level(rel)
                if found is not None:
                    names.setdefault((found[0], root), []).append(display)
            for (name, root), displays in sorted(names.items(), key=lambda kv: kv[0][0]):
                if any(d in owned for d in displays):
                    continue
                code = [d for d in displays if d.endswith((".py", ".so", ".pyd", ".pyc"))]
                if not code:
                    continue
                where = min(code, key=len)
                if name in stdlib and name not in _STDLIB_EXEMPT:
                    self._add(
                        ctx,
                        R.SHADOWS_STDLIB,
                        where,
                        f"{root.label} provides {name!r}, a standard-library name: it "
                        "is imported instead of the standard module",
                        evidence=f"{root.label}:{name}",
                        severity=Severity.HIGH if root.kind == "layer" else Severity.MEDIUM,
                    )
                    continue
                match = index.check(name)
                if match:
                    self._add(
                        ctx,
                        R.IMITATING_MODULE,
                        where,
                        f"{name!r} in {root.label} has no distribution metadata and "
                        f"imitates {match.target!r} ({match.how})",
                        evidence=f"{name} ~ {match.target}",
                    )
                native = [d for d in code if d.endswith((".so", ".pyd"))]
                if native:
                    self._add(
                        ctx,
                        R.NATIVE_UNVERIFIED,
                        native[0],
                        f"{len(native)} native extension(s) of {name!r} in {root.label} are not listed in any RECORD",
                        evidence=f"{root.label}:{name}",
                    )

    # obfuscated and import-time code ----------------------------------------------------------------------------

    def _inspect_sources(self, ctx: ScanContext, verified: set[str], *, inspect_all: bool) -> None:
        for seen in self.files.values():
            if not seen.path.endswith((".py", ".pyw")) or (seen.path in verified and not inspect_all):
                continue
            try:
                with seen.source.open() as stream:
                    data = stream.read(_SOURCE_LIMIT)
            except (OSError, ValueError) as exc:
                ctx.error(seen.path, f"cannot re-read for code checks: {exc}")
                continue
            suspicions = obfuscation.inspect_source(data)
            has_network = any(s.kind == "network" for s in suspicions)
            for s in suspicions:
                if s.kind == "decode-exec":
                    self._add(
                        ctx,
                        R.DECODE_EXEC,
                        Location(seen.path, s.line),
                        f"decoded data is executed: {s.evidence}",
                        evidence=s.evidence,
                    )
                elif s.kind == "network":
                    self._add(
                        ctx,
                        R.IMPORT_NETWORK,
                        Location(seen.path, s.line),
                        f"runs at import: {s.evidence}",
                        evidence=s.evidence,
                    )
                else:
                    self._add(
                        ctx,
                        R.CREDENTIAL_HARVEST,
                        Location(seen.path, s.line),
                        f"runs at import: {s.evidence}"
                        + (" (the module also makes network calls at import)" if has_network else ""),
                        evidence=s.evidence,
                        severity=Severity.CRITICAL if has_network else None,
                    )

    # declared dependencies ----------------------------------------------------------------------------------------

    def _declared(
        self, ctx: ScanContext, dists: list[vendored.Distribution], options: Mapping[str, Any]
    ) -> list[Declared]:
        inside_dists = [d.site + t + "/" for d in dists for t in d.top_dirs] + [d.dist_info + "/" for d in dists]

        def ours(path: str) -> bool:
            return not any(path.startswith(p) for p in inside_dists)

        internal = list(string_list(options, "internal_packages", "scan.supply"))
        declared: list[Declared] = []
        reported: set[tuple[str, str, int]] = set()

        def report(
            rule: Rule, path: str, line: int, message: str, evidence: str, severity: Severity | None = None
        ) -> None:
            if (rule.id, path, line) not in reported:
                reported.add((rule.id, path, line))
                self._add(ctx, rule, Location(path, line), message, evidence=evidence, severity=severity)

        parsed: dict[str, requirements.RequirementsFile] = {}
        for path, text in self.texts.items():
            folder, _, name = vendored.split_display(path)[1].rpartition("/")
            if ours(path) and requirements.looks_like_requirements(name, folder):
                parsed[path] = requirements.parse(text, path)
        included: set[str] = set()
        for path, req_file in list(parsed.items()):
            for target, line in req_file.includes:
                full = _member(
                    vendored.split_display(path)[0]
                    + posixpath.dirname(vendored.split_display(path)[1])
                    + ("/" if "/" in vendored.split_display(path)[1] else ""),
                    target,
                )
                if full not in parsed and full in self.texts:
                    parsed[full] = requirements.parse(self.texts[full], full)
                if full in parsed:
                    included.add(full)
                else:
                    report(
                        R.DECLARATION_PROBLEM,
                        path,
                        line,
                        f"included file {target!r} is not in the package; its requirements were not checked",
                        evidence=target,
                    )
        for top_path in list(parsed):
            if top_path in included:
                continue
            group = _closure(top_path, parsed)
            index_url = next((f.index_url for f in group if f.index_url), None)
            extras = [e for f in group for e in f.extra_index_urls]
            no_index = any(f.no_index for f in group)
            indexes = (
                [] if no_index else [index_url[0] if index_url else "https://pypi.org/simple"] + [u for u, _ in extras]
            )
            for f in group:
                hashed = f.hashed
                for line, problem in f.problems:
                    report(R.DECLARATION_PROBLEM, f.path, line, problem, evidence=problem[:80])
                for url, line in [*([f.index_url] if f.index_url else []), *f.extra_index_urls, *f.find_links]:
                    if url.lower().startswith("http://"):
                        report(
                            R.UNTRUSTED_SOURCE,
                            f.path,
                            line,
                            f"packages are fetched over plain HTTP from {url}",
                            evidence=url,
                            severity=Severity.HIGH,
                        )
                for host, line in f.trusted_hosts:
                    report(
                        R.UNTRUSTED_SOURCE,
                        f.path,
                        line,
                        f"--trusted-host {host} turns off TLS verification for that index",
                        evidence=host,
                    )
                for d in f.requirements:
                    declared.append(d)
                    self._check_declared(ctx, d, report)
                    if not d.url and d.version is None:
                        report(
                            R.UNPINNED,
                            d.path,
                            d.line,
                            f"{d.name}{d.specifier} is not pinned to one version",
                            evidence=f"{d.name}{d.specifier}",
                        )
                    if not d.hashes and not d.url and hashed:
                        report(
                            R.UNHASHED,
                            d.path,
                            d.line,
                            f"{d.name} has no --hash while {hashed} other requirement(s) in this file do",
                            evidence=d.name,
                            severity=Severity.MEDIUM,
                        )
                if hashed == 0 and not f.require_hashes and any(not r.url for r in f.requirements):
                    first = next(r for r in f.requirements if not r.url)
                    report(
                        R.UNHASHED,
                        f.path,
                        first.line,
                        f"none of the {len(f.requirements)} requirements in this file carries a --hash",
                        evidence=f.path,
                    )
                for d in f.requirements:
                    if _is_internal(d.name, internal) and any(is_public_index(u) for u in indexes):
                        via = "an --extra-index-url" if len(indexes) > 1 else "the default index (PyPI)"
                        report(
                            R.CONFUSION,
                            d.path,
                            d.line,
                            f"internal package {d.name!r} is resolved with {via} in the search ({', '.join(indexes)})",
                            evidence=d.name,
                            severity=Severity.MEDIUM if d.hashes else None,
                        )
        for path, text in self.texts.items():
            name = vendored.split_display(path)[1].rsplit("/", 1)[-1]
            if name.lower() not in ("pyproject.toml", *lockfiles.LOCK_NAMES) or not ours(path):
                continue
            manifest = lockfiles.parse(name, text, path)
            for line, problem in manifest.problems:
                report(R.DECLARATION_PROBLEM, path, line, problem, evidence=problem[:80])
            public_sources = not manifest.sources or any(is_public_index(u) for _, u, _ in manifest.sources)
            for d in manifest.dependencies:
                declared.append(d)
                self._check_declared(ctx, d, report)
                if d.source == "pyproject" and not d.url and d.version is None:
                    report(
                        R.UNPINNED,
                        d.path,
                        d.line,
                        f"{d.name} {d.specifier or '(any version)'} is a range; deploy from a lock file",
                        evidence=f"{d.name}{d.specifier}",
                        severity=Severity.LOW,
                    )
                if _is_internal(d.name, internal):
                    if d.index is not None and is_public_index(d.index):
                        report(
                            R.CONFUSION,
                            d.path,
                            d.line,
                            f"internal package {d.name!r} was locked from a public index ({d.index})",
                            evidence=d.name,
                        )
                    elif d.source == "pyproject" and not d.explicit_source and public_sources:
                        report(
                            R.CONFUSION,
                            d.path,
                            d.line,
                            f"internal package {d.name!r} has no explicit private "
                            "source, so the public index is searched too",
                            evidence=d.name,
                        )
        return declared

    def _check_declared(self, ctx: ScanContext, d: Declared, report: Callable[..., None]) -> None:
        match = typosquat.default_index().check(d.name) if d.name else None
        if match:
            report(
                R.TYPOSQUAT,
                d.path,
                d.line,
                f"{d.name!r} imitates the well-known package {match.target!r} ({match.how})",
                f"{d.name} ~ {match.target}",
            )
        if d.url:
            lower = d.url.lower()
            if lower.startswith("http://"):
                report(
                    R.UNTRUSTED_SOURCE,
                    d.path,
                    d.line,
                    f"{d.name} is downloaded over plain HTTP ({d.url})",
                    d.url,
                    Severity.HIGH,
                )
            elif lower.startswith(("git+", "hg+", "svn+", "bzr+", "https://")) and not _pinned_ref(d.url, d.hashes):
                report(
                    R.UNTRUSTED_SOURCE,
                    d.path,
                    d.line,
                    f"{d.name} comes from {d.url} without a commit hash or file hash",
                    d.url,
                )

    # vulnerabilities ----------------------------------------------------------------------------------------------

    def _vulnerabilities(self, ctx: ScanContext, dists: list[vendored.Distribution], declared: list[Declared]) -> None:
        path = ctx.settings.vuln_db
        if not path:
            ctx.note(
                "No vulnerability database was given (--vuln-db PATH): known-vulnerable and known-malicious "
                "dependency versions were NOT checked."
            )
            return
        from sas.scan.supply.osv import VulnDatabase

        items = [(d.name, d.version, Location(d.dist_info)) for d in dists if d.version]
        items += [(d.name, d.version, Location(d.path, d.line)) for d in declared if d.version]
        db = VulnDatabase.load(path, {name for name, _, _ in items})
        ctx.note(f"Vulnerability database {path}: {db.records} OSV records read.")
        if db.unreadable:
            ctx.note(
                f"Vulnerability database {path}: {db.unreadable} record(s) that may concern these packages could "
                "not be read (damaged): their advisories were NOT checked."
            )
        for name, version, location in items:
            assert version is not None
            for adv in db.lookup(name, version):
                fixed = f"; fixed in {', '.join(adv.fixed)}" if adv.fixed else ""
                summary = f": {adv.summary}" if adv.summary else ""
                rule = R.MALICIOUS if adv.malicious else R.VULNERABLE
                self._add(
                    ctx,
                    rule,
                    location,
                    f"{name} {version} is affected by {adv.id}{summary}{fixed}",
                    evidence=f"{adv.id}:{typosquat.normalize(name)}=={version}",
                    severity=None if adv.malicious else adv.severity,
                )


ANALYZERS = [SupplyChainAnalyzer]


# -- helpers ---------------------------------------------------------------------------------------------------


def _add(
    ctx: ScanContext,
    rule: Rule,
    location: Location | str,
    message: str,
    *,
    evidence: str = "",
    severity: Severity | None = None,
) -> None:
    ctx.add(make_finding(rule, location, message, evidence=evidence, severity=severity))


def _parent(path: str) -> str:
    container, inner = vendored.split_display(path)
    return container + posixpath.dirname(inner) if "/" in inner else container.rstrip("!")


def _member(site: str, rel: str) -> str:
    """Display path of ``rel`` inside the folder whose display prefix is ``site`` (``""``, ``"a.zip!x/"``)."""
    if "!" in site:
        container, folder = site.rsplit("!", 1)
        container += "!"
    else:
        container, folder = "", site
    return container + posixpath.normpath(posixpath.join(folder, rel))


def _wants_text(inner: str, lower: str, size: int) -> bool:
    if size > _MANIFEST_LIMIT:
        return False
    if lower in ("record", "metadata"):
        return "/" in inner and inner.split("/")[-2].endswith(".dist-info")
    if lower in ("pyproject.toml", "poetry.lock", "uv.lock", "pipfile.lock") or lower in layers.TEMPLATE_NAMES:
        return True
    if lower.endswith(".pth"):
        return size <= _TEXT_LIMIT
    if not lower.endswith((".txt", ".in", ".pip")) or size > _TEXT_LIMIT or ".dist-info/" in inner:
        return False
    # requirements-like names anywhere; other small text files only near the top, where -r includes live
    # (test data deep inside vendored packages can be thousands of .txt files)
    folder, _, name = inner.rpartition("/")
    return requirements.looks_like_requirements(name, folder) or (inner.count("/") <= 2 and size <= 64 * 1024)


def _files_by_root(files: Mapping[str, _Seen], roots: list[layers.Root]) -> dict[layers.Root, dict[str, _Seen]]:
    """Each file under the root with the longest matching prefix; files in nested archives are not importable."""
    ordered = sorted(roots, key=lambda r: -len(r.prefix))
    out: dict[layers.Root, dict[str, _Seen]] = {r: {} for r in roots}
    for path, seen in files.items():
        for root in ordered:
            if path.startswith(root.prefix):
                rel = path[len(root.prefix) :]
                if "!" not in rel:
                    out[root][rel] = seen
                break
    return out


def _closure(start: str, parsed: Mapping[str, requirements.RequirementsFile]) -> list[requirements.RequirementsFile]:
    out: list[requirements.RequirementsFile] = []
    todo = [start]
    seen: set[str] = set()
    while todo:
        path = todo.pop()
        if path in seen or path not in parsed:
            continue
        seen.add(path)
        f = parsed[path]
        out.append(f)
        container, inner = vendored.split_display(path)
        folder = container + (posixpath.dirname(inner) + "/" if "/" in inner else "")
        todo += [_member(folder, target) for target, _ in f.includes]
    return out


def _is_internal(name: str, patterns: list[str]) -> bool:
    n = typosquat.normalize(name)
    return any(fnmatch.fnmatchcase(n, typosquat.normalize(p)) or fnmatch.fnmatchcase(n, p.lower()) for p in patterns)


def _pinned_ref(url: str, hashes: tuple[str, ...]) -> bool:
    if hashes:
        return True
    ref = url.split("#", 1)[0].rsplit("@", 1)[-1] if "@" in url.split("://", 1)[-1] else ""
    return len(ref) == 40 and all(c in "0123456789abcdef" for c in ref.lower())


def _options(config: Mapping[str, Any]) -> Mapping[str, Any]:
    scan = config.get("scan", {}) if isinstance(config, Mapping) else {}
    supply = scan.get("supply", {}) if isinstance(scan, Mapping) else {}
    return supply if isinstance(supply, Mapping) else {}
