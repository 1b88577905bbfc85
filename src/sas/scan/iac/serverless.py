"""Serverless Framework (v3/v4) ``serverless.yml`` into :class:`~sas.scan.iac.model.FunctionSpec`.

IAM comes from every place the framework reads it: ``provider.iam.role.statements`` (v3+),
``provider.iamRoleStatements`` (older, still accepted), ``provider.iam.role.managedPolicies`` /
``provider.iamManagedPolicies``, per-function ``iamRoleStatements`` (serverless-iam-roles-per-function) and
per-function or provider ``role`` naming a role in ``resources`` or an external ARN. The shared default role
also gets the framework's logging permissions.

Variables: ``${self:...}``, ``${sls:stage}``, ``${file(...)}`` (from files of the scanned tree) and the
defaults of ``${opt:x, default}`` / ``${env:X, default}`` are resolved. Everything else (``${ssm:}``,
``${cf:}``, ``${s3:}``, an ``opt``/``env`` without default) is Unknown. Nothing is ever read from the
scanner's own environment or command line: a scan must give the same answer on every machine.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from sas.scan.iac import cloudformation
from sas.scan.iac.cloudformation import parse_layer_arn
from sas.scan.iac.intrinsics import Evaluator, ResourceRef
from sas.scan.iac.managed import AWS_MANAGED, managed_name
from sas.scan.iac.model import (
    Deployment,
    EnvVar,
    FunctionSpec,
    LayerRef,
    ParseIssue,
    RoleSpec,
    Sourced,
    Src,
    Statement,
    Trigger,
    Unknown,
)
from sas.scan.iac.policydoc import statements as doc_statements
from sas.scan.iac.yamlsrc import LList, LMap, TemplateError, brief, line_of
from sas.scan.iac.yamlsrc import load as load_yaml

_INNER_VAR = re.compile(r"\$\{([^${}]*)\}")
_MAX_PASSES = 10
_MAX_LINE_LOOKUPS = 256
_LOGGING = ("logs:CreateLogStream", "logs:CreateLogGroup", "logs:PutLogEvents", "logs:TagResource")


def looks_like(doc: Any) -> bool:
    return isinstance(doc, dict) and "service" in doc and "provider" in doc


class _Vars:
    """Resolves ``${...}`` variables statically; unresolvable ones become Unknown."""

    def __init__(self, doc: dict[str, Any], path: str, files: dict[str, str]) -> None:
        self.doc = doc
        self.path = path
        self.folder = posixpath.dirname(path)
        self.files = files
        self.unresolved: list[str] = []
        self._file_cache: dict[str, Any] = {}
        self._depth = 0
        self._copies: dict[int, tuple[Any, Any]] = {}

    def value(self, node: Any) -> Any:
        if isinstance(node, str) and "${" in node:
            return self._string(node)
        if not isinstance(node, dict | list):
            return node
        # YAML aliases share one container object: resolve it once and share the copy too, or a
        # billion-laughs document (ten aliases of ten aliases...) is copied out to 10**9 nodes
        done = self._copies.get(id(node))
        if done is not None and done[0] is node:
            return done[1]
        out: Any
        if isinstance(node, dict):
            out = LMap({k: self.value(v) for k, v in node.items()})
            out.line = getattr(node, "line", None)
            out.key_lines = dict(getattr(node, "key_lines", {}))
        else:
            out = LList([self.value(v) for v in node])
            out.line = getattr(node, "line", None)
            out.item_lines = list(getattr(node, "item_lines", []))
        self._copies[id(node)] = (node, out)
        return out

    def _string(self, text: str) -> Any:
        self._depth += 1
        try:
            if self._depth > 20:
                return Unknown(text)
            current: Any = text
            for _ in range(_MAX_PASSES):
                if not isinstance(current, str):
                    return current
                match = _INNER_VAR.search(current)
                if match is None:
                    return current.replace("\x00{", "${")
                resolved = self._variable(match.group(1).strip())
                if match.span() == (0, len(current)):
                    if isinstance(resolved, Unknown):
                        return resolved
                    current = resolved
                    continue
                if isinstance(resolved, str | int | float) and not isinstance(resolved, bool):
                    piece = str(resolved)
                else:
                    # keep the variable written (escaped so it is not re-resolved): specific, never a wildcard
                    piece = "\x00{" + match.group(1) + "}"
                current = current[: match.start()] + piece + current[match.end() :]
            return Unknown(text)
        finally:
            self._depth -= 1

    def _variable(self, expr: str) -> Any:
        source, default = _split_default(expr)
        kind, _, rest = source.partition(":")
        kind = kind.strip()
        result: Any
        if kind == "self":
            result = self._lookup(self.doc, rest.strip())
        elif kind == "sls" and rest.strip() == "stage":
            provider = self.doc.get("provider")
            stage = provider.get("stage") if isinstance(provider, dict) else None
            result = self.value(stage) if stage is not None else "dev"
        elif kind.startswith("file("):
            result = self._file(source)
        elif kind in ("opt", "env", "param"):
            result = Unknown(f"${{{expr}}}")  # never read from the scanner's environment or command line
        elif kind == "aws" and rest.strip() == "accountId":
            result = "${AWS::AccountId}"
        else:
            result = Unknown(f"${{{expr}}}")
        if isinstance(result, Unknown) and default is not None:
            return self.value(default)
        if isinstance(result, Unknown):
            self.unresolved.append(f"${{{expr}}}")
        return result

    def _lookup(self, doc: Any, dotted: str) -> Any:
        node: Any = doc
        for part in (p for p in dotted.split(".") if p):
            if isinstance(node, str) and "${" in node:
                node = self._string(node)  # a variable whose value is a mapping (a ${file()} include)
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return Unknown(f"${{self:{dotted}}}")
        return self.value(node) if dotted else Unknown("${self:}")

    def _file(self, source: str) -> Any:
        match = re.match(r"file\(([^)]+)\)(?::(.*))?$", source.strip())
        if not match:
            return Unknown(f"${{{source}}}")
        rel = match.group(1).strip().strip("'\"")
        target = posixpath.normpath(posixpath.join(self.folder, rel)) if self.folder else posixpath.normpath(rel)
        if target not in self._file_cache:
            text = self.files.get(target)
            parsed: Any = Unknown(f"file {rel} not found in the scanned tree")
            if text is not None and target.endswith((".yml", ".yaml", ".json")):
                try:
                    parsed = load_yaml(text, json_hint=target.endswith(".json"))
                except TemplateError:
                    parsed = Unknown(f"file {rel} is malformed")
            elif text is not None:
                parsed = Unknown(f"file {rel} is code (not evaluated)")
            self._file_cache[target] = parsed
        doc = self._file_cache[target]
        if isinstance(doc, Unknown):
            return doc
        key = (match.group(2) or "").strip()
        return self._lookup(doc, key) if key else self.value(doc)


def _split_default(expr: str) -> tuple[str, str | None]:
    """``opt:stage, 'dev'`` -> (``opt:stage``, ``dev``)."""
    depth = 0
    for i, ch in enumerate(expr):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            return expr[:i].strip(), expr[i + 1 :].strip().strip("'\"")
    return expr, None


def _str(value: Any) -> str | Unknown:
    return cloudformation._str(value)


def _int(value: Any) -> int | Unknown:
    return cloudformation._int(value)


class _Parser:
    def __init__(self, doc: dict[str, Any], path: str, files: dict[str, str]) -> None:
        self.path = path
        self.vars = _Vars(doc, path, files)
        self.raw = doc
        self.doc = self.vars.value(doc)
        provider = self.doc.get("provider")
        self.provider: dict[str, Any] = provider if isinstance(provider, dict) else LMap()
        resources = self.doc.get("resources")
        cfn = resources.get("Resources") if isinstance(resources, dict) else None
        self.cfn_doc: dict[str, Any] = {"Resources": cfn if isinstance(cfn, dict) else {}}
        self.cfn = cloudformation._Parser(self.cfn_doc, path, "serverless")
        self.ev = Evaluator(self.cfn_doc)
        self.issues: list[ParseIssue] = []

    def src(self, container: Any, key: Any) -> Src:
        return Src(self.path, line_of(container, key))

    def run(self) -> Deployment:
        name = self.provider.get("name")
        if name not in (None, "aws"):
            return Deployment("serverless", self.path, issues=(self._issue(f"provider {name} is not checked yet"),))
        functions = self.doc.get("functions")
        out = []
        shared = self._shared_role()
        if isinstance(functions, dict):
            for fname, spec in functions.items():
                if isinstance(spec, dict):
                    out.append(self._function(str(fname), spec, functions, shared))
        text = self.vars.files.get(self.path, "")
        for count, expr in enumerate(sorted(set(self.vars.unresolved))):
            # each lookup scans the text: past a few hundred variables (a crafted file holds tens of
            # thousands) the rest are reported at the document's line instead of taking seconds each batch
            line = _line_containing(text, expr[2:-1]) if text and count < _MAX_LINE_LOOKUPS else None
            message = f"variable {expr} cannot be resolved from the files; not guessed"
            self.issues.append(ParseIssue(Src(self.path, line or getattr(self.raw, "line", 1)), message))
        return Deployment("serverless", self.path, tuple(out), tuple(self.issues))

    def _issue(self, message: str) -> ParseIssue:
        return ParseIssue(Src(self.path, getattr(self.raw, "line", 1)), message)

    # ---- IAM
    def _statements(self, node: Any, origin: str) -> list[Statement]:
        if not isinstance(node, list):
            return []
        out = []
        for index, item in enumerate(node):
            line = line_of(node, index)
            value = self.ev.value(item)
            out += doc_statements([value] if isinstance(value, dict) else value, self.path, line, origin)
        return out

    def _managed(self, node: Any, origin_src: Src) -> tuple[list[Statement], list[Sourced[str]]]:
        stmts: list[Statement] = []
        refs: list[Sourced[str]] = []
        if not isinstance(node, list):
            return stmts, refs
        for index, raw in enumerate(node):
            src = Src(self.path, line_of(node, index) or origin_src.line)
            text = _str(self.ev.value(raw))
            if isinstance(text, Unknown):
                refs.append(Sourced(text, src))
                continue
            name = managed_name(text)
            if name in AWS_MANAGED:
                for effect, acts, not_acts, res in AWS_MANAGED[name]:
                    stmts.append(Statement(effect, acts, not_acts, res, src=src, origin=f"AWS managed {name}"))
                refs.append(Sourced(text, src))
            else:
                refs.append(Sourced(Unknown(f"managed policy {text}"), src))
        return stmts, refs

    def _logging(self, src: Src) -> Statement:
        return Statement("Allow", _LOGGING, (), ("*",), src=src, origin="framework logging")

    def _shared_role(self) -> RoleSpec | None:
        """provider-level role: an external/resource role, or the framework's default one."""
        iam = self.provider.get("iam")
        iam = iam if isinstance(iam, dict) else LMap()
        role_node = iam.get("role") if "role" in iam else self.provider.get("role")
        role_container = iam if "role" in iam else self.provider
        if isinstance(role_node, str | dict) and not (isinstance(role_node, dict) and _is_role_block(role_node)):
            return self._named_role(role_node, self.src(role_container, "role"))
        if isinstance(role_node, Unknown):
            return RoleSpec(str(role_node), self.src(role_container, "role"), external=True)
        block = role_node if isinstance(role_node, dict) else LMap()
        src = (
            self.src(role_container, "role") if role_node is not None else self.src(self.provider, "iamRoleStatements")
        )
        stmts = [self._logging(Src(self.path, getattr(self.provider, "line", None)))]
        stmts += self._statements(block.get("statements"), "provider.iam.role.statements")
        stmts += self._statements(self.provider.get("iamRoleStatements"), "provider.iamRoleStatements")
        managed_node = block.get("managedPolicies", self.provider.get("iamManagedPolicies"))
        more, refs = self._managed(managed_node, src)
        stmts += more
        boundary = block.get("permissionsBoundary", self.provider.get("rolePermissionsBoundary"))
        bsrc = Sourced(_str(self.ev.value(boundary)), src) if boundary is not None else None
        return RoleSpec("IamRoleLambdaExecution", src, tuple(stmts), tuple(refs), bsrc)

    def _named_role(self, node: Any, src: Src) -> RoleSpec:
        value = self.ev.value(node)
        if isinstance(value, ResourceRef):
            return self.cfn._role(value.logical_id)
        if isinstance(value, str) and value in self.cfn.resources:
            return self.cfn._role(value)
        text = _str(value)
        return RoleSpec(str(text), src, external=True)

    def _function_role(self, spec: dict[str, Any], shared: RoleSpec | None, fname: str) -> RoleSpec | None:
        if "role" in spec:
            return self._named_role(spec["role"], self.src(spec, "role"))
        if "iamRoleStatements" in spec:  # serverless-iam-roles-per-function
            src = self.src(spec, "iamRoleStatements")
            stmts = [self._logging(src), *self._statements(spec["iamRoleStatements"], f"{fname}.iamRoleStatements")]
            if spec.get("iamRoleStatementsInherit") is True and shared is not None:
                stmts += list(shared.statements)
            return RoleSpec(f"{fname}IamRole", src, tuple(stmts))
        return shared

    # ---- functions
    def _function(self, fname: str, spec: dict[str, Any], functions: Any, shared: RoleSpec | None) -> FunctionSpec:
        prov = self.provider

        def pick(key: str, prov_key: str | None = None) -> tuple[Any, Src] | None:
            if key in spec:
                return spec[key], self.src(spec, key)
            pk = prov_key or key
            if pk in prov:
                return prov[pk], self.src(prov, pk)
            return None

        def sourced_str(key: str) -> Sourced[str] | None:
            hit = pick(key)
            return Sourced(_str(self.ev.value(hit[0])), hit[1]) if hit else None

        def sourced_int(key: str, prov_key: str | None = None) -> Sourced[int] | None:
            hit = pick(key, prov_key)
            return Sourced(_int(self.ev.value(hit[0])), hit[1]) if hit else None

        env = self._environment(prov.get("environment")) + self._environment(spec.get("environment"))
        merged_env = {e.name: e for e in env}
        layers_node = spec.get("layers", prov.get("layers"))
        layers_container = spec if "layers" in spec else prov
        memory = sourced_int("memorySize")
        if memory is None:
            memory = Sourced(1024, self.src(functions, fname))  # the framework's default
        timeout = sourced_int("timeout")
        if timeout is None:
            timeout = Sourced(6, self.src(functions, fname))
        tracing = None
        tracing_node = prov.get("tracing")
        if "tracing" in spec:
            tracing = Sourced(_str(spec["tracing"]), self.src(spec, "tracing"))
        elif isinstance(tracing_node, dict) and "lambda" in tracing_node:
            tracing = Sourced(_str(tracing_node["lambda"]), self.src(tracing_node, "lambda"))
        dead = None
        if "onError" in spec:
            dead = Sourced("onError", self.src(spec, "onError"))
        destinations = spec.get("destinations")
        if isinstance(destinations, dict) and "onFailure" in destinations:
            dead = Sourced("destinations.onFailure", self.src(destinations, "onFailure"))
        package = Sourced(_str(spec["image"]), self.src(spec, "image")) if "image" in spec else None
        return FunctionSpec(
            name=fname,
            platform="aws",
            src=self.src(functions, fname),
            fmt="serverless",
            runtime=sourced_str("runtime"),
            handler=sourced_str("handler"),
            memory_mb=memory,
            timeout_s=timeout,
            ephemeral_mb=sourced_int("ephemeralStorageSize"),
            reserved_concurrency=sourced_int("reservedConcurrency"),
            environment=tuple(merged_env.values()),
            layers=self._layers(layers_node, layers_container),
            package=package,
            package_type="Image" if package else "Zip",
            triggers=tuple(self._events(fname, spec)),
            role=self._function_role(spec, shared, fname),
            tracing=tracing,
            dead_letter=dead,
            code_signing=None,
            vpc="vpc" in spec or "vpc" in prov,
        )

    def _environment(self, node: Any) -> tuple[EnvVar, ...]:
        if not isinstance(node, dict):
            return ()
        out = []
        for name, raw in node.items():
            val = self.ev.value(raw)
            ref = ""
            if isinstance(val, ResourceRef):
                res = self.cfn.resources.get(val.logical_id)
                ref = f"{res.get('Type') if isinstance(res, dict) else ''} {val}"
            out.append(EnvVar(str(name), _str(val), self.src(node, name), ref))
        return tuple(out)

    def _layers(self, node: Any, container: Any) -> tuple[LayerRef, ...]:
        if not isinstance(node, list):
            return ()
        out = []
        for index, raw in enumerate(node):
            src = Src(self.path, line_of(node, index) or line_of(container, "layers"))
            val = self.ev.value(raw)
            if isinstance(val, ResourceRef) or (isinstance(raw, dict) and "Ref" in raw):
                out.append(LayerRef(str(val), src, None, "own", own=True))
                continue
            text = _str(val)
            out.append(parse_layer_arn(text, src) if isinstance(text, str) else LayerRef(text, src))
        return tuple(out)

    def _events(self, fname: str, spec: dict[str, Any]) -> list[Trigger]:
        out: list[Trigger] = []
        if "url" in spec:
            url = spec["url"]
            auth: str | Unknown = "NONE"
            if isinstance(url, dict):
                authorizer = url.get("authorizer")
                auth = "AWS_IAM" if brief(authorizer).lower() == "aws_iam" else "NONE"
            if url is not False:
                out.append(Trigger("function-url", self.src(spec, "url"), auth, auth == "NONE", "url"))
        events = spec.get("events")
        if not isinstance(events, list):
            return out
        for index, item in enumerate(events):
            if not isinstance(item, dict) or len(item) != 1:
                continue
            kind, body = next(iter(item.items()))
            src = Src(self.path, line_of(events, index))
            if kind == "http":
                out.append(self._http_event(body, src))
            elif kind == "httpApi":
                out.append(self._http_api_event(body, src))
            else:
                out.append(Trigger("event", src, "AWS", False, f"{kind} event"))
        return out

    def _http_event(self, body: Any, src: Src) -> Trigger:
        if isinstance(body, str):
            return Trigger("rest-api", src, "NONE", True, f"http event {body} without an authorizer")
        if not isinstance(body, dict):
            return Trigger("rest-api", src, Unknown(brief(body)), None, "http event")
        route = f"{brief(body.get('method', 'any')).upper()} {brief(body.get('path', '/'))}"
        authorizer = body.get("authorizer")
        if authorizer is None:
            if body.get("private") is True:
                return Trigger("rest-api", src, "API_KEY", False, f"http event {route}, API key only")
            return Trigger("rest-api", src, "NONE", True, f"http event {route} without an authorizer")
        if isinstance(authorizer, Unknown):
            return Trigger("rest-api", src, authorizer, None, f"http event {route}")
        return Trigger("rest-api", self.src(body, "authorizer"), _authorizer_name(authorizer), False, route)

    def _http_api_event(self, body: Any, src: Src) -> Trigger:
        if isinstance(body, str):
            return Trigger("http-api", src, "NONE", True, f"httpApi event {body} without an authorizer")
        if not isinstance(body, dict):
            return Trigger("http-api", src, Unknown(brief(body)), None, "httpApi event")
        route = f"{brief(body.get('method', '*')).upper()} {brief(body.get('path', '/'))}"
        authorizer = body.get("authorizer")
        if authorizer is None:
            return Trigger("http-api", src, "NONE", True, f"httpApi event {route} without an authorizer")
        if isinstance(authorizer, Unknown):
            return Trigger("http-api", src, authorizer, None, f"httpApi event {route}")
        return Trigger("http-api", self.src(body, "authorizer"), _authorizer_name(authorizer), False, route)


def _line_containing(text: str, needle: str) -> int | None:
    index = text.find(needle)
    return text.count("\n", 0, index) + 1 if index >= 0 else None


def _is_role_block(node: dict[str, Any]) -> bool:
    return any(k in node for k in ("statements", "managedPolicies", "permissionsBoundary", "name", "tags"))


def _authorizer_name(node: Any) -> str:
    if isinstance(node, dict):
        for key in ("type", "name", "id", "arn"):
            if key in node:
                return brief(node[key])
        return "authorizer"
    return brief(node)


def parse(doc: Any, path: str, files: dict[str, str] | None = None) -> Deployment:
    """Parse a loaded serverless.yml; ``files`` maps display paths to text for ``${file()}`` lookups."""
    if not isinstance(doc, dict):
        return Deployment("serverless", path)
    return _Parser(doc, path, files or {}).run()
