"""Start-up hooks: ``.pth`` files and ``sitecustomize``/``usercustomize`` modules.

``site`` executes every line of a ``.pth`` file in a site folder that starts with ``import`` (followed by a
space or tab), at every interpreter start, before any handler code runs; other lines are added to
``sys.path``. ``sitecustomize`` and ``usercustomize`` are imported by ``site`` from anywhere on ``sys.path``.
On Lambda the layer folders reach ``sys.path`` through ``PYTHONPATH`` and container images install into a real
site folder, so a hook in a function or layer package is treated as live wherever it sits.

Ordinary hooks, told apart by content (not by name alone, since a name is free to copy): setuptools'
``distutils-precedence.pth`` (the ``_distutils_hack`` shim), legacy namespace-package ``*-nspkg.pth`` files,
editable installs (``__editable__.*.pth``) and virtualenv's ``_virtualenv.pth``.
"""

from __future__ import annotations

from dataclasses import dataclass

WRITABLE_DIRS = ("/tmp", "/dev/shm", "/var/tmp")  # noqa: S108 - these are what we look for, not what we use


@dataclass(frozen=True, slots=True)
class PthAnalysis:
    executable: tuple[tuple[int, str], ...]  # (line, text) of lines site.py would exec
    writable_paths: tuple[tuple[int, str], ...]  # sys.path additions under writable folders
    known: str  # name of the ordinary pattern the executable lines match, "" if none


def analyze_pth(name: str, text: str) -> PthAnalysis:
    executable: list[tuple[int, str]] = []
    writable: list[tuple[int, str]] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("import ", "import\t")):
            executable.append((number, line))
        elif line.startswith(WRITABLE_DIRS):
            writable.append((number, line))
    return PthAnalysis(tuple(executable), tuple(writable), _known_pattern(name, [t for _, t in executable]))


def _known_pattern(name: str, lines: list[str]) -> str:
    if not lines:
        return ""
    joined = "\n".join(lines)
    if (
        name == "distutils-precedence.pth"
        and len(lines) == 1
        and "_distutils_hack" in joined
        and "SETUPTOOLS_USE_DISTUTILS" in joined
        and "add_shim()" in joined
        and "exec(" not in joined
    ):
        return "setuptools distutils shim"
    nspkg = all("sys._getframe(1).f_locals['sitedir']" in t or "has_mfs" in t for t in lines)
    if name.endswith("-nspkg.pth") and nspkg and not any(w in joined for w in ("exec(", "urlopen", "subprocess")):
        return "legacy namespace package"
    if name.startswith("__editable__.") and all(
        t.startswith("import __editable__") and t.endswith(".install()") for t in lines
    ):
        return "editable install"
    if name == "_virtualenv.pth" and lines == ["import _virtualenv"]:
        return "virtualenv"
    return ""


def is_customize_module(rel: str) -> bool:
    """``sitecustomize``/``usercustomize`` as a module or package at the top of a search folder."""
    top = rel.split("/", 1)[0]
    stem = top.split(".", 1)[0]
    return stem in ("sitecustomize", "usercustomize") and (
        ("/" not in rel and top.endswith((".py", ".pyc", ".so", ".pyd"))) or rel == f"{stem}/__init__.py"
    )
