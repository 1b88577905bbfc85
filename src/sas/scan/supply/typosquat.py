"""Typosquat detection: is a package name an imitation of a well-known one?

The well-known names are a curated list shipped as data (``sas/data/popular_packages.txt``); nothing is looked
up at run time. A name is suspicious when, after PEP 503 normalisation, it is not itself on the list and

* it folds to the same skeleton as a listed name once separators (``-``, ``_``, ``.``, none) and look-alike
  characters (``rn``/``m``, ``vv``/``w``, ``0``/``o``, ``1``/``l``, capital ``I``/``l``) are ignored;
* it equals a listed name once a ``python``/``python3``/``py``/``py3`` prefix or suffix is added or removed
  (``python3-dateutil``, ``python-mongo`` for ``pymongo``, ``nmap-python`` for ``python-nmap``);
* its skeleton is within a small optimal-string-alignment distance (insertions, deletions, substitutions,
  adjacent transpositions) of a listed skeleton: none for names of up to 4 characters, 1 up to 9, 2 from 10.

Candidates are found with a symmetric-deletion index (every string reachable by deleting up to two characters)
so that checking a name costs a few dictionary look-ups, not a pass over the whole list; each candidate is then
confirmed with the exact distance. Hand-written rather than a library (``rapidfuzz``, ``jellyfish``): the
distance is twenty lines, and the index is what makes it fast.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_SEPARATORS = re.compile(r"[-_.]+")
_SEPARATED_PREFIXES = ("python3-", "python-", "py3-", "py-")
_SEPARATED_SUFFIXES = ("-python3", "-python", "-py3", "-py")
_BARE_PREFIXES = ("python3", "python", "py3", "py")
_HOMOGLYPHS_RAW = (("I", "l"),)
_HOMOGLYPHS = (("rn", "m"), ("vv", "w"), ("0", "o"), ("1", "l"))


def normalize(name: str) -> str:
    """PEP 503 normalisation: lower case, runs of ``-``, ``_`` and ``.`` become one ``-``."""
    return _SEPARATORS.sub("-", name).lower().strip("-")


def skeleton(name: str, *, fold_case_glyphs: bool = False) -> str:
    """The name with look-alike characters folded and every separator removed.

    ``fold_case_glyphs`` also reads a capital I as l; only for exact comparisons, where it cannot over-match.
    """
    text = name
    if fold_case_glyphs:
        for a, b in _HOMOGLYPHS_RAW:
            text = text.replace(a, b)
    text = text.lower()
    for a, b in _HOMOGLYPHS:
        text = text.replace(a, b)
    return _SEPARATORS.sub("", text)


def core(name: str) -> str:
    """The skeleton without one separated ``python-``/``py-`` prefix or ``-python``/``-py`` suffix, else ``""``."""
    n = normalize(name)
    stripped = n
    for prefix in _SEPARATED_PREFIXES:
        if n.startswith(prefix) and len(n) - len(prefix) >= 3:
            stripped = n[len(prefix) :]
            break
    for suffix in _SEPARATED_SUFFIXES:
        if stripped.endswith(suffix) and len(stripped) - len(suffix) >= 3:
            stripped = stripped[: -len(suffix)]
            break
    return skeleton(stripped) if stripped != n else ""


def bare_core(name: str) -> str:
    """The skeleton without a ``python``/``py`` prefix glued to the name (``pymongo`` -> ``mongo``), else ``""``.

    Only compared with names that carry an affix themselves: ``pyinstaller`` and ``installer`` are both real.
    """
    n = normalize(name)
    for prefix in _BARE_PREFIXES:
        if n.startswith(prefix) and len(n) - len(prefix) >= 3 and n[len(prefix)] != "-":
            return skeleton(n[len(prefix) :])
    return ""


def threshold(length: int) -> int:
    """Edits allowed for a target skeleton of ``length`` characters: short names collide too easily."""
    if length <= 4:
        return 0
    return 1 if length <= 11 else 2


def osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance, or ``limit + 1`` as soon as it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1]


def _deletions(word: str, depth: int) -> set[str]:
    out = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        out |= frontier
    return out


@dataclass(frozen=True, slots=True)
class SquatMatch:
    """``name`` looks like the well-known ``target``; ``how`` says why, for the report."""

    name: str
    target: str
    how: str


class TyposquatIndex:
    """An index over well-known names; :meth:`check` says whether a name imitates one of them."""

    def __init__(self, names: list[str], exempt: frozenset[str] = frozenset()) -> None:
        self.names = [normalize(n) for n in names]
        self.known = frozenset(self.names) | {normalize(n) for n in exempt}
        self.rank = {n: i for i, n in reversed(list(enumerate(self.names)))}
        self._skeletons: dict[str, str] = {}
        self._cores: dict[str, str] = {}  # separated affix removed
        self._bare: dict[str, str] = {}  # glued py/python prefix removed
        self._forms: dict[str, tuple[str, ...]] = {}
        self._deletes: dict[str, list[str]] = {}
        for name in self.names:
            sk, c, b = skeleton(name), core(name), bare_core(name)
            self._skeletons.setdefault(sk, name)
            if c:
                self._cores.setdefault(c, name)
            if b:
                self._bare.setdefault(b, name)
            forms = tuple({sk, c} - {""})
            self._forms[name] = forms
            for form in forms:
                for variant in _deletions(form, threshold(len(form))):
                    self._deletes.setdefault(variant, []).append(name)

    def is_known(self, name: str) -> bool:
        return normalize(name) in self.known

    def check(self, name: str) -> SquatMatch | None:
        """The well-known name that ``name`` imitates, or None (always None for a listed name)."""
        n = normalize(name)
        if not n or n in self.known:
            return None
        target = self._skeletons.get(skeleton(name, fold_case_glyphs=True))
        if target is not None:
            return SquatMatch(name, target, "same name once separators and look-alike characters are ignored")
        sk, c, b = skeleton(name), core(name), bare_core(name)
        target = (
            (self._skeletons.get(c) or self._cores.get(c) or self._bare.get(c) if c else None)
            or (self._cores.get(b) or self._bare.get(b) if b else None)
            or self._cores.get(sk)
        )
        if target is not None:
            return SquatMatch(name, target, "same name with a python/py prefix or suffix added, removed or changed")
        best: tuple[int, int, str] | None = None
        for form in {sk, c} - {""}:
            for variant in _deletions(form, 2):
                for target in self._deletes.get(variant, ()):
                    if _adds_a_segment(n, target):
                        continue
                    for tform in self._forms[target]:
                        limit = threshold(min(len(form), len(tform)))
                        d = osa_distance(form, tform, limit)
                        if d <= limit:
                            key = (d, self.rank[target], target)
                            if best is None or key < best:
                                best = key
        if best is not None:
            d, _, target = best
            return SquatMatch(name, target, f"{d} character edit{'s' if d > 1 else ''} away")
        return None


def _adds_a_segment(a: str, b: str) -> bool:
    """One name is the other plus a whole ``-``-separated segment (``tomli-w``, ``flask-cors``) or one leading
    letter (``umsgpack``, ``isympy``, ``ubjson``): companion naming habits, not typing slips."""
    if a.startswith(b + "-") or a.endswith("-" + b) or b.startswith(a + "-") or b.endswith("-" + a):
        return True
    return (len(a) == len(b) + 1 and a[1:] == b) or (len(b) == len(a) + 1 and b[1:] == a)


def load_names(resource: str = "popular_packages.txt") -> list[str]:
    """Names from a data file of ``sas`` (one per line, ``#`` comments)."""
    text = resources.files("sas").joinpath("data", resource).read_text("utf-8")
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


@cache
def default_index() -> TyposquatIndex:
    """The index over the shipped list of well-known distributions (built once per process)."""
    return TyposquatIndex(load_names())


# Import names that differ from their distribution's name, for packages found without metadata.
IMPORT_NAMES: dict[str, str] = {
    "yaml": "pyyaml",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "cv2": "opencv-python",
    "PIL": "pillow",
    "bs4": "beautifulsoup4",
    "dateutil": "python-dateutil",
    "jwt": "pyjwt",
    "attr": "attrs",
    "OpenSSL": "pyopenssl",
    "Crypto": "pycryptodome",
    "Cryptodome": "pycryptodomex",
    "zmq": "pyzmq",
    "dns": "dnspython",
    "git": "gitpython",
    "serial": "pyserial",
    "docx": "python-docx",
    "pptx": "python-pptx",
    "fitz": "pymupdf",
    "google": "google-api-core",
    "grpc": "grpcio",
    "jose": "python-jose",
    "dotenv": "python-dotenv",
    "magic": "python-magic",
    "multipart": "python-multipart",
    "slugify": "python-slugify",
    "socketio": "python-socketio",
    "engineio": "python-engineio",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "pymysql": "pymysql",
    "kafka": "kafka-python",
    "ldap": "python-ldap",
    "nmap": "python-nmap",
    "websocket": "websocket-client",
    "win32api": "pywin32",
    "typing_extensions": "typing-extensions",
    "pkg_resources": "setuptools",
    "_distutils_hack": "setuptools",
    "charset_normalizer": "charset-normalizer",
    "google_crc32c": "google-crc32c",
    "markdown_it": "markdown-it-py",
    "ruamel": "ruamel-yaml",
    "huggingface_hub": "huggingface-hub",
    "lightning_utilities": "lightning-utilities",
    "pytorch_lightning": "pytorch-lightning",
    "tf_keras": "tf-keras",
    "llama_cpp": "llama-cpp-python",
    "faiss": "faiss-cpu",
    "onnxruntime": "onnxruntime",
    "sentence_transformers": "sentence-transformers",
    "aws_lambda_powertools": "aws-lambda-powertools",
    "aws_xray_sdk": "aws-xray-sdk",
    "awslambdaric": "awslambdaric",
    "azure": "azure-core",
}

# Ordinary names of a function's own modules that sit close to a listed import name (``tools``/``toolz``,
# ``database``/``databases``, ``parser``/``parsel``): never reported as imitations.
_COMMON_MODULE_NAMES = frozenset(
    {
        "tools",
        "tool",
        "database",
        "databases",
        "parser",
        "parsers",
        "types",
        "utils",
        "util",
        "model",
        "models",
        "config",
        "configs",
        "settings",
        "schema",
        "schemas",
        "tasks",
        "task",
        "tests",
        "test",
        "handler",
        "handlers",
        "helpers",
        "common",
        "client",
        "clients",
        "service",
        "services",
        "events",
        "layers",
        "routes",
        "routers",
        "views",
        "forms",
        "metrics",
        "train",
        "predict",
        "inference",
        "loader",
        "loaders",
        "logger",
        "logging_utils",
        "storage",
        "errors",
        "exceptions",
        "constants",
        "version",
        "main",
        "app",
        "api",
        "core",
        "data",
        "lib",
        "libs",
        "src",
        "vendor",
        "scripts",
        "docs",
        "bin",
        "conftest",
        "setup",
        "manage",
        "wsgi",
        "asgi",
        "lambda_function",
        "function_app",
    }
)


def _import_name(dist: str) -> str:
    """The usual import name of a distribution: affixes such as ``-py``/``python-`` dropped (``absl-py``)."""
    n = normalize(dist)
    for prefix in _SEPARATED_PREFIXES:
        if n.startswith(prefix) and len(n) - len(prefix) >= 3:
            n = n[len(prefix) :]
            break
    for suffix in _SEPARATED_SUFFIXES:
        if n.endswith(suffix) and len(n) - len(suffix) >= 3:
            n = n[: -len(suffix)]
            break
    return n.replace("-", "_")


@cache
def import_index() -> TyposquatIndex:
    """An index over well-known *import* names, for importable packages found without any metadata.

    Targets are the import names above plus the most popular distributions whose name is also their import
    name; everything on the distribution list is exempt, and so are common names of a function's own modules.
    """
    dists = load_names()
    imports = [_import_name(n) for n in dists]
    targets = list(IMPORT_NAMES) + imports[:300]
    exempt = frozenset(imports) | frozenset(n.replace("-", "_") for n in dists) | _COMMON_MODULE_NAMES
    return TyposquatIndex(targets, exempt)
