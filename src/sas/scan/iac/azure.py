"""Azure Functions: ``function.json``, ``local.settings.json`` and the Python v2 programming model.

``function.json`` bindings give each function's HTTP ``authLevel`` (``anonymous`` is public; the
default is ``function``). ``local.settings.json`` is meant to stay local but is committed often: its
``Values`` are checked like app settings. The Python v2 model declares the same things in code
(``func.FunctionApp(http_auth_level=...)``, ``@app.route(auth_level=...)``); they are read with ``ast``,
never by importing the module, which would run it.
"""

from __future__ import annotations

import ast
import json
import posixpath
from typing import Any

from sas.scan.iac.model import Deployment, EnvVar, FunctionSpec, ParseIssue, Sourced, Src, Trigger, Unknown
from sas.scan.iac.yamlsrc import TemplateError, line_of
from sas.scan.iac.yamlsrc import load as load_yaml

_APP_CLASSES = ("FunctionApp", "AsgiFunctionApp", "WsgiFunctionApp", "Blueprint")
_HTTP_DECORATORS = ("route", "http_trigger", "get", "post", "put", "delete", "patch")


def looks_like_function_json(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("bindings"), list)


def looks_like_python_v2(text: str) -> bool:
    return ("azure.functions" in text or "azure import functions" in text) and any(c in text for c in _APP_CLASSES)


def http_trigger(binding: Any, src: Src, detail: str, default_level: str = "function") -> Trigger | None:
    """The trigger of one binding when it is an HTTP trigger, else None."""
    if not isinstance(binding, dict) or str(binding.get("type", "")).lower() != "httptrigger":
        return None
    level = binding.get("authLevel", default_level)
    if not isinstance(level, str):
        return Trigger("azure-http", src, Unknown(str(level)), None, detail)
    public = level.lower() == "anonymous"
    return Trigger("azure-http", src, level.lower(), public, f"{detail} httpTrigger authLevel {level}")


def parse_json_file(text: str, path: str, name: str) -> Deployment:
    try:
        doc = load_yaml(text, json_hint=True)
    except TemplateError as exc:
        return Deployment("azure", path, issues=(ParseIssue(Src(path, exc.line), str(exc), fatal=True),))
    if not isinstance(doc, dict):
        return Deployment("azure", path)
    if name == "local.settings.json":
        return _local_settings(doc, path)
    if name == "function.json" or looks_like_function_json(doc):
        return _function_json(doc, path)
    return Deployment("azure", path)  # host.json: nothing security-relevant is decided there


def _function_json(doc: dict[str, Any], path: str) -> Deployment:
    folder = posixpath.basename(posixpath.dirname(path)) or path
    bindings = doc.get("bindings")
    triggers = []
    if isinstance(bindings, list):
        for index, binding in enumerate(bindings):
            src = Src(
                path,
                line_of(binding, "authLevel")
                if isinstance(binding, dict) and "authLevel" in binding
                else line_of(bindings, index),
            )
            trig = http_trigger(binding, src, folder)
            if trig is not None:
                triggers.append(trig)
            elif isinstance(binding, dict) and str(binding.get("direction", "")).lower() == "in":
                triggers.append(Trigger("event", src, "platform", False, f"{binding.get('type')} binding"))
    fn = FunctionSpec(
        name=folder,
        platform="azure",
        src=Src(path, getattr(doc, "line", 1)),
        fmt="function.json",
        triggers=tuple(triggers),
        reserved_concurrency=_app_level_concurrency(path),
    )
    return Deployment("function.json", path, (fn,))


def _app_level_concurrency(path: str) -> Sourced[int]:
    """Concurrency of an Azure app is set on the app (app_scale_limit), not per function: not judged here."""
    return Sourced(Unknown("set on the function app, not in function.json"), Src(path))


def _local_settings(doc: dict[str, Any], path: str) -> Deployment:
    if doc.get("IsEncrypted") is True:  # encrypted with the machine key by `func settings encrypt`
        return Deployment("local.settings.json", path)
    values = doc.get("Values")
    settings = []
    if isinstance(values, dict):
        for key, val in values.items():
            text = val if isinstance(val, str) else json.dumps(val)
            settings.append(EnvVar(str(key), text, Src(path, line_of(values, key))))
    conns = doc.get("ConnectionStrings")
    if isinstance(conns, dict):
        for key, val in conns.items():
            if isinstance(val, str):
                settings.append(EnvVar(f"ConnectionStrings.{key}", val, Src(path, line_of(conns, key))))
    return Deployment("local.settings.json", path, settings=tuple(settings))


# ---- Python v2 programming model
def _auth_level(node: ast.expr | None) -> str | None:
    """``func.AuthLevel.ANONYMOUS`` / ``AuthLevel.ANONYMOUS`` / ``"anonymous"`` -> ``anonymous``."""
    if node is None:
        return None
    if isinstance(node, ast.Attribute):
        return node.attr.lower()
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.lower()
    if isinstance(node, ast.Name):
        return f"<{node.id}>"
    return "<expression>"


def _call_name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def parse_python_v2(text: str, path: str) -> Deployment:
    try:
        tree = ast.parse(text, filename=path)
    except (SyntaxError, ValueError, RecursionError) as exc:
        line = getattr(exc, "lineno", None)
        return Deployment(
            "python-v2", path, issues=(ParseIssue(Src(path, line), f"Python source does not parse: {exc}"),)
        )
    apps: dict[str, str] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        if _call_name(node.value.func) not in _APP_CLASSES:
            continue
        level = _auth_level(_kw(node.value, "http_auth_level")) or "function"
        for target in node.targets:
            if isinstance(target, ast.Name):
                apps[target.id] = level
    functions = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        name = node.name
        triggers = []
        for deco in node.decorator_list:
            if not isinstance(deco, ast.Call) or not isinstance(deco.func, ast.Attribute):
                continue
            owner = deco.func.value
            app_name = owner.id if isinstance(owner, ast.Name) else ""
            if app_name not in apps:
                continue
            if deco.func.attr == "function_name":
                arg = _kw(deco, "name") or (deco.args[0] if deco.args else None)
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    name = arg.value
            if deco.func.attr in _HTTP_DECORATORS:
                level_node = _kw(deco, "auth_level")
                level = _auth_level(level_node) or apps[app_name]
                src = Src(path, (level_node.lineno if level_node is not None else deco.lineno))
                route = _kw(deco, "route")
                route_text = str(route.value) if isinstance(route, ast.Constant) else name
                origin = "decorator" if level_node is not None else f"{app_name} http_auth_level default"
                if level.startswith("<"):
                    triggers.append(Trigger("azure-http", src, Unknown(level), None, f"route {route_text}"))
                else:
                    public = level == "anonymous"
                    detail = f"route {route_text} auth_level {level} ({origin})"
                    triggers.append(Trigger("azure-http", src, level, public, detail))
        if triggers:
            functions.append(
                FunctionSpec(
                    name=name,
                    platform="azure",
                    src=Src(path, node.lineno),
                    fmt="python-v2",
                    triggers=tuple(triggers),
                    reserved_concurrency=_app_level_concurrency(path),
                )
            )
    return Deployment("python-v2", path, tuple(functions))
