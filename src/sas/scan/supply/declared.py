"""The record every dependency parser produces: one declared dependency with where it was declared."""

from __future__ import annotations

from dataclasses import dataclass

PYPI_HOSTS = frozenset({"pypi.org", "pypi.python.org", "files.pythonhosted.org", "test.pypi.org"})
PYPI_SIMPLE = "https://pypi.org/simple"


@dataclass(frozen=True, slots=True)
class Declared:
    """A dependency as one file declares it.

    ``version`` is set only when the declaration pins one exact version (``==1.2.3``, a lock entry).
    ``url`` is a direct reference (``name @ https://...``, ``git+https://...``, a local path).
    ``index`` is the registry a lock file recorded for it (``None``: unknown, the file's own index options apply).
    """

    name: str
    path: str
    line: int
    source: str  # "requirements", "pyproject", "poetry.lock", "uv.lock", "Pipfile.lock"
    specifier: str = ""
    version: str | None = None
    hashes: tuple[str, ...] = ()
    url: str = ""
    index: str | None = None
    markers: str = ""
    explicit_source: bool = False  # the declaration names its own index (poetry ``source =``, uv sources)


def is_public_index(url: str) -> bool:
    """Whether an index URL is the public PyPI (or its test instance)."""
    from urllib.parse import urlsplit

    host = (urlsplit(url if "://" in url else "https://" + url).hostname or "").lower()
    return host in PYPI_HOSTS


def line_of(text: str, needle: str, start: int = 0) -> int:
    """1-based line of the first ``needle`` at or after offset ``start`` (1 if absent)."""
    at = text.find(needle, start)
    return text.count("\n", 0, at) + 1 if at >= 0 else 1
