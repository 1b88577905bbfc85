"""The function and its layers as Python will import them on AWS Lambda.

Lambda's import order, checked against AWS's documentation:

1. the function root, ``/var/task`` (``$LAMBDA_TASK_ROOT``): "By default, the runtime searches the
   ``$LAMBDA_TASK_ROOT`` directory first" (AWS Lambda Developer Guide, *Working with .zip file archives for
   Python Lambda functions* / *Deploy Python Lambda functions with container images*, section "Dependency
   search path and runtime-included libraries");
2. the layers, extracted into ``/opt``: ``/opt/python/lib/python3.x/site-packages`` then ``/opt/python``
   (*Packaging your layer content*, "Layer paths for each Lambda runtime", lists both; the runtime's
   bootstrap puts the site-packages folder first). Layers are merged into ``/opt`` "in the order you add
   them" (*Adding layers to functions*), so a later layer's file replaces an earlier layer's file at the same
   path; layers come before the runtime's own libraries (an AWS maintainer in aws-lambda-web-adapter#454:
   "The layers have precedence over the runtime");
3. the runtime: ``/var/lang/lib/python3.x/site-packages`` (boto3 on 3.11+), ``/var/runtime``, the stdlib.

Name resolution follows PEP 420 for each top-level name: the first folder holding a module (``x.py``,
``x.*.so``) or a regular package (``x/__init__.py``) wins at once; a namespace portion (``x/`` without
``__init__``) is remembered and the search goes on, so a later folder's ``x.py`` or regular ``x/`` beats a
function's ``x/`` folder that has no ``__init__.py``. That is how a layer can take over a function's own code.

Layers come from ``sas scan FUNCTION --layer L.zip`` (display paths ``layer:L.zip!python/...``) and, for
"layer folders next to a template", from SAM/CloudFormation templates found in a scanned folder:
``AWS::Serverless::LayerVersion`` ``ContentUri`` and ``AWS::Lambda::LayerVersion`` ``Content`` that are
local folder paths become layers (in template order, before ``--layer`` ones), and ``AWS::Serverless::Function``
``CodeUri`` folders (or ``Globals.Function.CodeUri``) and ``AWS::Lambda::Function`` ``Code`` folders (as
``aws cloudformation package`` reads them) become function roots; without a ``CodeUri`` the
scanned folder is the function root. Every function root is combined with every layer: templates that give
different functions different layers are read conservatively. Templates are read with PyYAML (already in the
scan extra) through a loader that takes CloudFormation short-form tags (``!Ref``...) as plain values: these
checks need four keys, not the IaC analyzer's full model.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_SITE_DIR = re.compile(r"^python/lib/python3\.\d+/site-packages/")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TEMPLATE_NAMES = frozenset({"template.yaml", "template.yml", "template.json", "samconfig-template.yaml"})


@dataclass(frozen=True, slots=True)
class Root:
    """A folder tree that lands somewhere Lambda imports from. ``prefix`` is the display-path prefix."""

    kind: str  # "function" | "layer"
    label: str
    prefix: str
    order: int = 0


@dataclass
class Provider:
    """What one search folder offers for one top-level name."""

    name: str
    root: Root
    folder: str  # display-path prefix of the search folder
    kind: str = "namespace"  # "module" | "package" | "namespace"
    files: dict[str, bytes] = field(default_factory=dict)  # path relative to the search folder -> sha256
    display: dict[str, str] = field(default_factory=dict)  # relative path -> display path

    @property
    def key_path(self) -> str:
        for candidate in (f"{self.name}/__init__.py", f"{self.name}.py"):
            if candidate in self.display:
                return self.display[candidate]
        return self.display[min(self.display)] if self.display else self.folder + self.name

    def same_content(self, other: Provider) -> bool:
        return self.files == other.files


@dataclass(frozen=True, slots=True)
class Shadow:
    """``winner`` is imported; ``loser`` (same top-level name, another root) never is."""

    name: str
    winner: Provider
    loser: Provider
    namespace_takeover: bool  # the loser was a namespace portion found earlier on the path


def top_level(rel: str) -> tuple[str, str] | None:
    """``(name, kind)`` for a file at ``rel`` inside a search folder, or None when it is not importable."""
    if "/" in rel:
        top, rest = rel.split("/", 1)
        if not _IDENT.match(top) or top == "__pycache__":
            return None
        if rest in ("__init__.py", "__init__.pyc") or (rest.startswith("__init__.") and rest.endswith((".so", ".pyd"))):
            return top, "package"
        return top, "namespace"
    if rel.endswith((".py", ".pyc", ".so", ".pyd")):
        stem = rel.split(".", 1)[0]
        if _IDENT.match(stem):
            return stem, "module"
    return None


def search_folders(root: Root, rels: Iterable[str]) -> list[str]:
    """Relative search folders inside one root, in import order."""
    if root.kind == "function":
        return [""]
    sites = sorted({m.group(0) for r in rels if (m := _SITE_DIR.match(r))}, reverse=True)
    return [*sites, "python/"]


def resolve(folders: list[tuple[str, dict[str, tuple[str, bytes, Root]]]]) -> list[Shadow]:
    """PEP 420 resolution of every top-level name over ordered search folders.

    Each folder is ``(display prefix, {relative path: (display path, sha256, root the file came from)})``; a
    name's provider belongs to the root of its ``__init__.py`` or module file (a merged /opt folder can hold
    files of several layers).
    """
    providers: dict[str, list[Provider]] = {}
    for prefix, files in folders:
        here: dict[str, Provider] = {}
        for rel, (display, digest, root) in files.items():
            found = top_level(rel)
            if found is None:
                continue
            name, kind = found
            p = here.setdefault(name, Provider(name, root, prefix))
            if kind != "namespace":
                p.kind = kind
                p.root = root
            p.files[rel] = digest
            p.display[rel] = display
        for name, p in here.items():
            if p.kind == "namespace" and not any(r.endswith((".py", ".so", ".pyd", ".pyc")) for r in p.files):
                continue  # a data folder, not importable code
            providers.setdefault(name, []).append(p)
    shadows: list[Shadow] = []
    for name, candidates in providers.items():
        winner_index = next((i for i, p in enumerate(candidates) if p.kind != "namespace"), None)
        if winner_index is None:
            continue  # only namespace portions: they merge, nothing is hidden
        winner = candidates[winner_index]
        for i, p in enumerate(candidates):
            if i == winner_index or p.root == winner.root:
                continue
            if p.kind != "namespace" and p.same_content(winner):
                continue
            shadows.append(Shadow(name, winner, p, namespace_takeover=i < winner_index))
    return shadows


# -- templates: layer folders next to a template -------------------------------------------------------------


def template_roots(text: str, folder: str) -> tuple[list[str], list[str]]:
    """``(layer folders, function code folders)`` named by a SAM/CloudFormation template, as display prefixes
    relative to the scanned tree (``folder`` is the template's own display folder, ``""`` or ``"x/"``)."""
    data = _load_template(text)
    if not isinstance(data, Mapping):
        return [], []
    resources = data.get("Resources")
    if not isinstance(resources, Mapping):
        return [], []
    layers: list[str] = []
    functions: list[str] = []
    globals_code = _table(_table(data.get("Globals")).get("Function")).get("CodeUri")
    for resource in resources.values():
        res = _table(resource)
        kind = res.get("Type")
        props = _table(res.get("Properties"))
        if kind == "AWS::Serverless::LayerVersion":
            uri = props.get("ContentUri")
        elif kind == "AWS::Lambda::LayerVersion":
            uri = props.get("Content")
        elif kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            uri = props.get("CodeUri", globals_code) if kind == "AWS::Serverless::Function" else props.get("Code")
            if isinstance(uri, str) and _local(uri):
                functions.append(_join(folder, uri))
            continue
        else:
            continue
        if isinstance(uri, str) and _local(uri):
            layers.append(_join(folder, uri))
    return layers, functions


def _local(uri: str) -> bool:
    return "://" not in uri and not uri.endswith((".zip", ".jar")) and not uri.startswith("s3:")


def _join(folder: str, uri: str) -> str:
    joined = posixpath.normpath(posixpath.join(folder.rstrip("/"), uri)) if folder else posixpath.normpath(uri)
    return "" if joined in (".", "") else joined.rstrip("/") + "/"


def _table(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _load_template(text: str) -> Any:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return None
    try:
        import yaml
    except ImportError:  # the scan extra is missing: templates are skipped, other checks still run
        return None

    class Loader(yaml.SafeLoader):
        pass

    def tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)  # type: ignore[arg-type]

    Loader.add_multi_constructor("!", tag)
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - SafeLoader subclass with inert tag handling
    except yaml.YAMLError:
        return None
