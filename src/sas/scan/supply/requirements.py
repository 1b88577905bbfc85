"""pip requirements files: requirements, per-line options and the global options that choose indexes.

Covers what ``pip install -r`` accepts and what matters for supply-chain checks: ``-r``/``-c`` includes,
``--hash``, ``--require-hashes``, ``-i``/``--index-url``, ``--extra-index-url``, ``--trusted-host``,
``--find-links``, ``--no-index``, ``-e`` editables, environment markers, extras, ``name @ url`` and VCS URLs,
and backslash continuations. PEP 508 parsing is delegated to ``packaging`` (the library pip itself vendors)
rather than a hand-written grammar; pip's own parser is not a public API and would import pip.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sas.scan.supply.declared import Declared

if TYPE_CHECKING:
    from packaging.requirements import Requirement

_EGG = re.compile(r"[#&]egg=([A-Za-z0-9][A-Za-z0-9._-]*)")
_URL_SCHEMES = ("http://", "https://", "file:", "git+", "hg+", "svn+", "bzr+")


@dataclass
class RequirementsFile:
    path: str
    requirements: list[Declared] = field(default_factory=list)
    index_url: tuple[str, int] | None = None  # (url, line)
    extra_index_urls: list[tuple[str, int]] = field(default_factory=list)
    find_links: list[tuple[str, int]] = field(default_factory=list)
    trusted_hosts: list[tuple[str, int]] = field(default_factory=list)
    includes: list[tuple[str, int]] = field(default_factory=list)  # -r and -c targets, as written
    no_index: bool = False
    require_hashes: bool = False
    problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def hashed(self) -> int:
        return sum(1 for r in self.requirements if r.hashes)


def looks_like_requirements(name: str, folder: str) -> bool:
    """File names pip users give requirements files (``requirements*.txt``, ``requirements/*.txt``, ``*.in``)."""
    lower = name.lower()
    if lower.endswith((".txt", ".in", ".pip")) and ("requirement" in lower or "constraint" in lower):
        return True
    return lower.endswith((".txt", ".in")) and folder.rsplit("/", 1)[-1].lower() in ("requirements", "reqs")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    buf = ""
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = "" if raw.lstrip().startswith("#") else re.sub(r"(^|\s)#.*$", "", raw)
        if not buf:
            start = number
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        if buf.strip():
            out.append((start, buf.strip()))
        buf = ""
    if buf.strip():
        out.append((start, buf.strip()))
    return out


def _split_options(line: str) -> tuple[str, list[tuple[str, str]]]:
    """Split ``requirement --opt=value --opt value`` into the requirement text and its options."""
    quote = ""
    cut = len(line)
    for i, ch in enumerate(line):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif (
            ch == "-"
            and (i == 0 or line[i - 1].isspace())
            and i + 1 < len(line)
            and (line[i + 1] == "-" or line[i + 1].isalpha())
        ):
            # a "-" inside a name or version (``my-pkg``, ``1.0-1``) is never preceded by whitespace
            cut = i
            break
    head, tail = line[:cut].strip(), line[cut:].strip()
    options: list[tuple[str, str]] = []
    tokens = tail.split()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("-"):
            if "=" in token:
                key, value = token.split("=", 1)
            elif i + 1 < len(tokens) and not tokens[i + 1].startswith("-"):
                key, value = token, tokens[i + 1]
                i += 1
            else:
                key, value = token, ""
            options.append((key, value))
        i += 1
    return head, options


def parse(text: str, path: str) -> RequirementsFile:
    """Parse one requirements file; ``-r`` includes are listed in ``includes``, resolved by the caller."""
    from packaging.requirements import InvalidRequirement, Requirement  # ~15 ms: only once a file is read

    result = RequirementsFile(path)
    for number, line in _logical_lines(text):
        head, options = _split_options(line)
        if not head:
            for key, value in options:
                _global_option(result, key, value, number)
            continue
        hashes = tuple(v for k, v in options if k == "--hash" and v)
        if head.lower().startswith(_URL_SCHEMES) or head.startswith((".", "/")):
            result.requirements.append(_from_url(head, path, number, hashes))
            continue
        try:
            req = Requirement(head)
        except InvalidRequirement as exc:
            result.problems.append((number, "not a valid requirement: " + str(exc).splitlines()[0]))
            continue
        pinned = _pinned_version(req)
        result.requirements.append(
            Declared(
                name=req.name,
                path=path,
                line=number,
                source="requirements",
                specifier=str(req.specifier),
                version=pinned,
                hashes=hashes,
                url=req.url or "",
                markers=str(req.marker) if req.marker else "",
            )
        )
    return result


def _global_option(result: RequirementsFile, key: str, value: str, number: int) -> None:
    if key in ("-r", "--requirement", "-c", "--constraint"):
        result.includes.append((value, number))
    elif key in ("-i", "--index-url"):
        result.index_url = (value, number)
    elif key == "--extra-index-url":
        result.extra_index_urls.append((value, number))
    elif key in ("-f", "--find-links"):
        result.find_links.append((value, number))
    elif key == "--trusted-host":
        result.trusted_hosts.append((value, number))
    elif key == "--no-index":
        result.no_index = True
    elif key == "--require-hashes":
        result.require_hashes = True
    elif key in ("-e", "--editable"):
        result.requirements.append(_from_url(value, result.path, number, ()))


def _pinned_version(req: Requirement) -> str | None:
    specs = list(req.specifier)
    if len(specs) == 1 and specs[0].operator in ("==", "===") and "*" not in specs[0].version:
        return specs[0].version
    return None


def _from_url(target: str, path: str, number: int, hashes: tuple[str, ...]) -> Declared:
    name = ""
    if " @ " in target:
        name, target = (part.strip() for part in target.split(" @ ", 1))
    egg = _EGG.search(target)
    if egg:
        name = egg.group(1)
    if not name:
        tail = target.rstrip("/").rsplit("/", 1)[-1]
        name = re.split(r"[-.](?=\d)|\.(?:whl|zip|tar)", tail, maxsplit=1)[0] if tail else target
    return Declared(name=name, path=path, line=number, source="requirements", url=target, hashes=hashes)
