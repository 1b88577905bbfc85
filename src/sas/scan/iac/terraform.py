"""Terraform (HCL and ``.tf.json``) into :class:`~sas.scan.iac.model.FunctionSpec`, one folder at a time.

python-hcl2 (8.x, in the ``scan`` extra) parses HCL; with ``SerializationOptions(strip_string_quotes=True,
explicit_blocks=False)`` it gives the long-standing dict shape (blocks as lists of dicts, expressions as
``"${...}"`` strings). It keeps no line numbers, so lines come from a light index of the source text:
the header line of each block and the first line of each attribute inside it. It is imported only when a
``.tf`` file is seen (its first parse builds a grammar cache; later parses are milliseconds).

Expressions are evaluated as far as the folder allows: ``var.x`` (defaults), ``local.x``, ``jsonencode()``
(re-parsed as HCL), heredoc JSON, and references to resources of the folder (``aws_iam_role.fn.arn``),
which is how a function is linked to its role, URL, permissions, API routes and invoker bindings. Anything
else is Unknown.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sas.scan.iac.cloudformation import parse_layer_arn
from sas.scan.iac.intrinsics import ResourceRef
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

_BLOCK = re.compile(r'^\s*(resource|data)\s+"?([\w-]+)"?\s+"?([\w-]+)"?\s*\{', re.MULTILINE)
_REF = re.compile(r"^(data\.)?([a-z][a-z0-9_]*)\.([A-Za-z_][\w-]*)(?:\[[^\]]*\])?(?:\.(.+))?$")
_INTERP = re.compile(r"\$\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
_PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
_BASIC_ROLES = ("roles/owner", "roles/editor")


class _Lines:
    """Line numbers for blocks and their attributes, from the raw text of one file."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.blocks: dict[tuple[str, str, str], tuple[int, int]] = {}
        starts = [(m.start(), m.group(1), m.group(2), m.group(3)) for m in _BLOCK.finditer(text)]
        offsets = [0]
        for line in self.lines:
            offsets.append(offsets[-1] + len(line) + 1)
        import bisect

        for index, (pos, kind, rtype, name) in enumerate(starts):
            first = bisect.bisect_right(offsets, pos)
            last = (
                bisect.bisect_right(offsets, starts[index + 1][0]) - 1 if index + 1 < len(starts) else len(self.lines)
            )
            self.blocks[(kind, rtype, name)] = (first, last)

    def block(self, kind: str, rtype: str, name: str) -> int | None:
        hit = self.blocks.get((kind, rtype, name))
        return hit[0] if hit else None

    def attr(self, kind: str, rtype: str, name: str, key: str) -> int | None:
        hit = self.blocks.get((kind, rtype, name))
        if hit is None:
            return None
        pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*(=|\{{)")
        for number in range(hit[0], min(hit[1], len(self.lines)) + 1):
            if pattern.match(self.lines[number - 1]):
                return number
        return hit[0]


def _first(value: Any) -> dict[str, Any]:
    """A nested block (hcl2 gives a list of dicts; .tf.json may give a dict)."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return value[0]
    return value if isinstance(value, dict) else {}


class _Folder:
    def __init__(self, folder: str, files: list[tuple[str, str]]) -> None:
        self.folder = folder
        self.issues: list[ParseIssue] = []
        # (kind, type, name) -> (body, path)
        self.blocks: dict[tuple[str, str, str], tuple[dict[str, Any], str]] = {}
        self.lines: dict[str, _Lines] = {}
        self.variables: dict[str, Any] = {}
        self.locals: dict[str, Any] = {}
        for path, text in files:
            self._load(path, text)
        self._depth = 0

    # ---- loading
    def _load(self, path: str, text: str) -> None:
        doc: Any
        if path.endswith(".json"):
            try:
                doc = json.loads(text)
            except ValueError as exc:
                self.issues.append(ParseIssue(Src(path, getattr(exc, "lineno", None)), f"invalid JSON: {exc}", True))
                return
            doc = _normalise_json(doc)
        else:
            try:
                import hcl2
                from hcl2 import SerializationOptions

                opts = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
                doc = hcl2.loads(text, serialization_options=opts)
            except Exception as exc:  # lark raises many types on hostile input; all mean malformed
                line = getattr(exc, "line", None)
                message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                self.issues.append(
                    ParseIssue(
                        Src(path, line if isinstance(line, int) else None), f"invalid HCL: {message}"[:200], True
                    )
                )
                return
            self.lines[path] = _Lines(text)
        if not isinstance(doc, dict):
            return
        for kind in ("resource", "data"):
            for group in _as_list(doc.get(kind)):
                if not isinstance(group, dict):
                    continue
                for rtype, named in group.items():
                    if not isinstance(named, dict):
                        continue
                    for name, body in named.items():
                        if isinstance(body, dict):
                            self.blocks[(kind, str(rtype), str(name))] = (body, path)
        for group in _as_list(doc.get("variable")):
            if isinstance(group, dict):
                for name, body in group.items():
                    if isinstance(body, dict) and "default" in body:
                        self.variables[str(name)] = body["default"]
        for group in _as_list(doc.get("locals")):
            if isinstance(group, dict):
                self.locals.update({str(k): v for k, v in group.items()})

    # ---- sources
    def src(self, kind: str, rtype: str, name: str, key: str | None = None) -> Src:
        body_path = self.blocks.get((kind, rtype, name))
        path = body_path[1] if body_path else self.folder
        index = self.lines.get(path)
        if index is None:
            return Src(path)
        line = index.attr(kind, rtype, name, key) if key else index.block(kind, rtype, name)
        return Src(path, line)

    def of_type(self, rtype: str, kind: str = "resource") -> list[tuple[str, dict[str, Any]]]:
        return [(n, body) for (k, t, n), (body, _) in self.blocks.items() if k == kind and t == rtype]

    # ---- evaluation
    def value(self, node: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > 30:
                return Unknown("expression too deeply nested")
            if isinstance(node, str):
                return self._string(node)
            if isinstance(node, dict):
                return {k: self.value(v) for k, v in node.items()}
            if isinstance(node, list):
                return [self.value(v) for v in node]
            return node
        finally:
            self._depth -= 1

    def _string(self, text: str) -> Any:
        stripped = text.strip()
        if stripped.startswith("<<"):
            body = stripped.split("\n", 1)[1] if "\n" in stripped else ""
            body = body.rsplit("\n", 1)[0] if "\n" in body else body
            return body
        if "${" not in text:
            return text
        whole = _whole_expression(stripped)
        if whole is not None:
            return self.expr(whole.strip())

        def repl(match: re.Match[str]) -> str:
            val = self.expr(match.group(1).strip())
            if isinstance(val, str | int | float) and not isinstance(val, bool):
                return str(val)
            return match.group(0)

        return _INTERP.sub(repl, text)

    def expr(self, expr: str) -> Any:
        if expr.startswith("jsonencode(") and expr.endswith(")"):
            return self._jsonencode(expr[len("jsonencode(") : -1])
        if expr.startswith("var."):
            name = expr[4:]
            return self.value(self.variables[name]) if name in self.variables else Unknown(expr)
        if expr.startswith("local."):
            name = expr[6:]
            return self.value(self.locals[name]) if name in self.locals else Unknown(expr)
        match = _REF.match(expr)
        if match:
            data, rtype, name, attr = match.groups()
            kind = "data" if data else "resource"
            if (kind, rtype, name) in self.blocks:
                return ResourceRef(f"{kind}.{rtype}.{name}", attr or "")
        return Unknown(expr)

    def _jsonencode(self, inner: str) -> Any:
        literal = _literal(inner)
        if literal is not _NOT_LITERAL:
            return self.value(literal)
        try:
            import hcl2
            from hcl2 import SerializationOptions

            opts = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)
            parsed = hcl2.loads(f"x = {inner}\n", serialization_options=opts)
        except Exception:  # any parser failure: the expression stays unknown
            return Unknown(f"jsonencode({inner[:60]})")
        return self.value(parsed.get("x")) if isinstance(parsed, dict) else Unknown("jsonencode")

    def ref(self, node: Any) -> ResourceRef | None:
        val = self.value(node)
        return val if isinstance(val, ResourceRef) else None

    def refs_in(self, node: Any) -> set[str]:
        """Every ``resource.type.name`` an expression mentions (for linking integrations and routes)."""
        out = set()
        for text in _walk_strings(node):
            for expr in re.findall(r"\$\{([^}]*)\}", text):
                for token in re.findall(r"\b(?:data\.)?[a-z][a-z0-9_]*\.[A-Za-z_][\w-]*", expr):
                    kind = "data" if token.startswith("data.") else "resource"
                    bare = token[5:] if kind == "data" else token
                    rtype, _, name = bare.partition(".")
                    if (kind, rtype, name) in self.blocks:
                        out.add(f"{kind}.{rtype}.{name}")
        return out


_NOT_LITERAL = object()
_TOKEN = re.compile(
    r'\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][\w.-]*)|(?P<p>[{}\[\],=:]))'
)


def _literal(text: str) -> Any:
    """An HCL literal (objects, lists, strings, numbers, bools) as Python, or ``_NOT_LITERAL``.

    ``jsonencode({...})`` bodies are almost always literals; reading them here avoids a second
    python-hcl2 parse per policy (the slowest step of a Terraform scan).
    """
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            if text[pos:].strip() == "":
                break
            return _NOT_LITERAL
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    index = 0

    def parse() -> Any:
        nonlocal index
        if index >= len(tokens):
            raise ValueError("end")
        kind, tok = tokens[index]
        index += 1
        if kind == "str":
            body = json.loads(tok)
            return body  # interpolations inside are evaluated by the caller
        if kind == "num":
            return float(tok) if "." in tok else int(tok)
        if kind == "word":
            if tok in ("true", "false"):
                return tok == "true"
            if tok == "null":
                return None
            return "${" + tok + "}"  # a reference: the caller evaluates it
        if tok == "[":
            items = []
            while tokens[index][1] != "]":
                items.append(parse())
                if tokens[index][1] == ",":
                    index += 1
            index += 1
            return items
        if tok == "{":
            obj: dict[str, Any] = {}
            while tokens[index][1] != "}":
                kkind, key = tokens[index]
                if kkind not in ("str", "word"):
                    raise ValueError("key")
                index += 1
                if tokens[index][1] not in ("=", ":"):
                    raise ValueError("separator")
                index += 1
                obj[json.loads(key) if kkind == "str" else key] = parse()
                if tokens[index][1] == ",":
                    index += 1
            index += 1
            return obj
        raise ValueError(tok)

    try:
        value = parse()
    except (ValueError, IndexError):
        return _NOT_LITERAL
    return value if index == len(tokens) else _NOT_LITERAL


def _whole_expression(text: str) -> str | None:
    """The inside of ``${...}`` when the whole string is one interpolation (braces may nest), else None."""
    if not (text.startswith("${") and text.endswith("}")):
        return None
    depth = 0
    in_string = False
    for index, ch in enumerate(text):
        if ch == '"' and text[index - 1 : index] != "\\":
            in_string = not in_string
        elif in_string:
            continue
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[2:-1] if index == len(text) - 1 else None
    return None


def _walk_strings(node: Any) -> list[str]:
    out: list[str] = []
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, str):
            out.append(cur)
        elif isinstance(cur, dict):
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)
    return out


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _normalise_json(doc: Any) -> Any:
    """``.tf.json`` has ``{"resource": {"type": {"name": {...}}}}``; hcl2 output wraps each in a list."""
    if not isinstance(doc, dict):
        return doc
    out = dict(doc)
    for key in ("resource", "data", "variable", "locals"):
        if isinstance(doc.get(key), dict):
            out[key] = [doc[key]]
    return out


def _str(value: Any) -> str | Unknown:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Unknown):
        return value
    return Unknown(str(value)[:120])


def _int(value: Any) -> int | Unknown:
    if isinstance(value, bool):
        return Unknown(str(value))
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        digits = re.match(r"^\s*(-?\d+)", value)
        if digits:
            return int(digits.group(1))
    if isinstance(value, float):
        return int(value)
    return value if isinstance(value, Unknown) else Unknown(str(value)[:120])


class _Builder:
    def __init__(self, tf: _Folder) -> None:
        self.tf = tf
        self.triggers: dict[str, list[Trigger]] = {}
        self.exposures: list[Trigger] = []
        self.role_statements: dict[str, list[Statement]] = {}
        self.role_managed: dict[str, list[Sourced[str]]] = {}
        self.sa_roles: dict[str, list[str]] = {}

    def add_trigger(self, key: str, trig: Trigger) -> None:
        self.triggers.setdefault(key, []).append(trig)

    # ---- IAM documents
    def policy(self, node: Any, src: Src, origin: str) -> list[Statement]:
        val = self.tf.value(node)
        if isinstance(val, ResourceRef) and val.logical_id.startswith("data.aws_iam_policy_document."):
            return self.policy_document(val.logical_id.split(".", 2)[2])
        if isinstance(val, str):
            try:
                val = json.loads(val)
            except ValueError:
                return [Statement("Allow", src=src, origin=f"{origin} (not JSON)", unresolved=True)]
        return doc_statements(val, src.path, src.line, origin)

    def policy_document(self, name: str, depth: int = 0) -> list[Statement]:
        hit = self.tf.blocks.get(("data", "aws_iam_policy_document", name))
        if hit is None or depth > 5:
            return []
        body, _ = hit
        out: list[Statement] = []
        for key in ("source_policy_documents", "source_json", "override_policy_documents", "override_json"):
            for item in _as_list(self.tf.value(body.get(key))):
                if isinstance(item, ResourceRef) and item.logical_id.startswith("data.aws_iam_policy_document."):
                    out += self.policy_document(item.logical_id.split(".", 2)[2], depth + 1)
        src = self.tf.src("data", "aws_iam_policy_document", name)
        for stmt in _as_list(body.get("statement")):
            if not isinstance(stmt, dict):
                continue
            ev = self.tf.value(stmt)
            conditions = [c for c in _as_list(ev.get("condition")) if isinstance(c, dict)]
            cond_text = json.dumps(conditions, default=str)[:200] if conditions else ""
            fields = {}
            unresolved = False
            for key in ("actions", "not_actions", "resources", "not_resources"):
                items = [v for v in _as_list(ev.get(key))]
                fields[key] = tuple(v for v in items if isinstance(v, str))
                unresolved = unresolved or len(fields[key]) != len(items)
            principals = _as_list(ev.get("principals"))
            if principals and not fields["actions"] and not fields["not_actions"]:
                continue
            effect = str(ev.get("effect", "Allow"))
            out.append(
                Statement(
                    "Deny" if effect.lower() == "deny" else "Allow",
                    fields["actions"],
                    fields["not_actions"],
                    fields["resources"] or (() if fields["not_resources"] else ("*",) if not principals else ()),
                    fields["not_resources"],
                    cond_text,
                    src,
                    f"aws_iam_policy_document.{name}",
                    unresolved,
                )
            )
        return out

    def managed(self, arn_node: Any, src: Src) -> tuple[list[Statement], Sourced[str]]:
        val = self.tf.value(arn_node)
        if isinstance(val, ResourceRef) and val.logical_id.startswith("resource.aws_iam_policy."):
            name = val.logical_id.split(".", 2)[2]
            body, _ = self.tf.blocks[("resource", "aws_iam_policy", name)]
            psrc = self.tf.src("resource", "aws_iam_policy", name, "policy")
            return self.policy(body.get("policy"), psrc, f"aws_iam_policy.{name}"), Sourced(
                f"aws_iam_policy.{name}", src
            )
        text = _str(val)
        if isinstance(text, Unknown):
            return [], Sourced(text, src)
        policy = managed_name(text)
        if policy is not None and policy in AWS_MANAGED:
            stmts = [
                Statement(e, a, na, r, src=src, origin=f"AWS managed {policy}") for e, a, na, r in AWS_MANAGED[policy]
            ]
            return stmts, Sourced(text, src)
        return [], Sourced(Unknown(f"managed policy {text}"), src)

    def collect_iam(self) -> None:
        tf = self.tf
        for name, body in tf.of_type("aws_iam_role_policy"):
            key = self.role_key(body.get("role"))
            if key:
                src = tf.src("resource", "aws_iam_role_policy", name, "policy")
                self.role_statements.setdefault(key, []).extend(
                    self.policy(body.get("policy"), src, f"aws_iam_role_policy.{name}")
                )
        for name, body in tf.of_type("aws_iam_role_policy_attachment"):
            key = self.role_key(body.get("role"))
            if key:
                src = tf.src("resource", "aws_iam_role_policy_attachment", name, "policy_arn")
                stmts, ref = self.managed(body.get("policy_arn"), src)
                self.role_statements.setdefault(key, []).extend(stmts)
                self.role_managed.setdefault(key, []).append(ref)
        for name, body in tf.of_type("aws_iam_policy_attachment"):
            src = tf.src("resource", "aws_iam_policy_attachment", name, "policy_arn")
            stmts, ref = self.managed(body.get("policy_arn"), src)
            for role_node in _as_list(body.get("roles")):
                key = self.role_key(role_node)
                if key:
                    self.role_statements.setdefault(key, []).extend(stmts)
                    self.role_managed.setdefault(key, []).append(ref)
        for _name, body in tf.of_type("google_project_iam_member") + tf.of_type("google_project_iam_binding"):
            role = _str(tf.value(body.get("role")))
            if not isinstance(role, str) or role not in _BASIC_ROLES:
                continue
            members = _as_list(body.get("member")) + _as_list(body.get("members"))
            for member in members:
                for sa_ref in tf.refs_in(member):
                    self.sa_roles.setdefault(sa_ref, []).append(role)

    def role_key(self, node: Any) -> str | None:
        """The aws_iam_role a ``role =`` attribute names (reference, or the role's literal name)."""
        val = self.tf.value(node)
        if isinstance(val, ResourceRef) and val.logical_id.startswith("resource.aws_iam_role."):
            return val.logical_id.split(".", 2)[2]
        if isinstance(val, str):
            for name, body in self.tf.of_type("aws_iam_role"):
                if self.tf.value(body.get("name")) == val or name == val:
                    return name
        return None

    def role(self, name: str) -> RoleSpec:
        tf = self.tf
        body, _ = tf.blocks[("resource", "aws_iam_role", name)]
        stmts: list[Statement] = []
        for index, inline in enumerate(_as_list(body.get("inline_policy"))):
            if isinstance(inline, dict) and "policy" in inline:
                src = tf.src("resource", "aws_iam_role", name, "inline_policy")
                stmts += self.policy(inline["policy"], src, f"aws_iam_role.{name} inline_policy {index}")
        refs: list[Sourced[str]] = []
        for arn in _as_list(tf.value(body.get("managed_policy_arns"))):
            src = tf.src("resource", "aws_iam_role", name, "managed_policy_arns")
            more, ref = self.managed(arn, src)
            stmts += more
            refs.append(ref)
        stmts += self.role_statements.get(name, [])
        refs += self.role_managed.get(name, [])
        boundary = None
        if "permissions_boundary" in body:
            boundary = Sourced(
                _str(tf.value(body["permissions_boundary"])),
                tf.src("resource", "aws_iam_role", name, "permissions_boundary"),
            )
        return RoleSpec(
            f"aws_iam_role.{name}", tf.src("resource", "aws_iam_role", name), tuple(stmts), tuple(refs), boundary
        )

    # ---- AWS entry points
    def aws_entry_points(self) -> None:
        tf = self.tf
        for name, body in tf.of_type("aws_lambda_function_url"):
            target = self.function_key(body.get("function_name"))
            auth = _str(tf.value(body.get("authorization_type", "NONE")))
            if target:
                src = tf.src("resource", "aws_lambda_function_url", name, "authorization_type")
                pub = None if isinstance(auth, Unknown) else auth.upper() == "NONE"
                self.add_trigger(target, Trigger("function-url", src, auth, pub, f"aws_lambda_function_url.{name}"))
        for name, body in tf.of_type("aws_lambda_permission"):
            principal = tf.value(body.get("principal"))
            if principal != "*":
                continue
            scoped = any(k in body for k in ("source_arn", "source_account", "principal_org_id"))
            url_auth = tf.value(body.get("function_url_auth_type"))
            public = not scoped and url_auth != "AWS_IAM"
            target = self.function_key(body.get("function_name"))
            if target:
                src = tf.src("resource", "aws_lambda_permission", name, "principal")
                detail = f"aws_lambda_permission.{name} principal '*'"
                self.add_trigger(target, Trigger("permission", src, "NONE" if public else "scoped", public, detail))
        for name, body in tf.of_type("aws_lambda_layer_version_permission"):
            if tf.value(body.get("principal")) == "*" and "organization_id" not in body:
                self.exposures.append(
                    Trigger(
                        "layer-permission",
                        tf.src("resource", "aws_lambda_layer_version_permission", name, "principal"),
                        "NONE",
                        True,
                        f"aws_lambda_layer_version_permission.{name} shares the layer with every AWS account",
                    )
                )
        methods = dict(tf.of_type("aws_api_gateway_method"))
        for _name, body in tf.of_type("aws_api_gateway_integration"):
            refs = tf.refs_in(body)
            functions = {r.split(".")[2] for r in refs if r.startswith("resource.aws_lambda_function.")}
            for mref in (r for r in refs if r.startswith("resource.aws_api_gateway_method.")):
                mname = mref.split(".")[2]
                method = methods.get(mname, {})
                auth = _str(tf.value(method.get("authorization", "NONE")))
                key = tf.value(method.get("api_key_required")) is True
                public = None if isinstance(auth, Unknown) else auth.upper() == "NONE" and not key
                src = tf.src("resource", "aws_api_gateway_method", mname, "authorization")
                for fkey in functions:
                    self.add_trigger(fkey, Trigger("rest-api", src, auth, public, f"aws_api_gateway_method.{mname}"))
        integrations = dict(tf.of_type("aws_apigatewayv2_integration"))
        for name, body in tf.of_type("aws_apigatewayv2_route"):
            auth = _str(tf.value(body.get("authorization_type", "NONE")))
            public = None if isinstance(auth, Unknown) else auth.upper() == "NONE"
            src = tf.src(
                "resource",
                "aws_apigatewayv2_route",
                name,
                "authorization_type" if "authorization_type" in body else None,
            )
            for iref in (
                r for r in tf.refs_in(body.get("target")) if r.startswith("resource.aws_apigatewayv2_integration.")
            ):
                integ = integrations.get(iref.split(".")[2], {})
                for fref in tf.refs_in(integ):
                    if fref.startswith("resource.aws_lambda_function."):
                        route = tf.value(body.get("route_key", ""))
                        self.add_trigger(
                            fref.split(".")[2],
                            Trigger("http-api", src, auth, public, f"aws_apigatewayv2_route.{name} {route}"),
                        )

    def function_key(self, node: Any) -> str | None:
        val = self.tf.value(node)
        if isinstance(val, ResourceRef) and val.logical_id.startswith("resource.aws_lambda_function."):
            return val.logical_id.split(".", 2)[2]
        if isinstance(val, str):
            for name, body in self.tf.of_type("aws_lambda_function"):
                if self.tf.value(body.get("function_name")) == val:
                    return name
        return None

    # ---- AWS functions
    def aws_function(self, name: str, body: dict[str, Any]) -> FunctionSpec:
        tf = self.tf
        kind = "aws_lambda_function"

        def sourced(key: str, conv: Any) -> Any:
            if key not in body:
                return None
            return Sourced(conv(tf.value(body[key])), tf.src("resource", kind, name, key))

        env_block = _first(body.get("environment"))
        env = self.env(tf.value(env_block.get("variables")), tf.src("resource", kind, name, "variables"))
        role = None
        if "role" in body:
            key = self.role_key(body["role"])
            if key is not None:
                role = self.role(key)
            else:
                role = RoleSpec(
                    str(_str(tf.value(body["role"]))), tf.src("resource", kind, name, "role"), external=True
                )
        layers = []
        for item in _as_list(tf.value(body.get("layers"))):
            src = tf.src("resource", kind, name, "layers")
            if isinstance(item, ResourceRef):
                versioned = item.logical_id.startswith("resource.aws_lambda_layer_version.") and item.attribute == "arn"
                layers.append(LayerRef(str(item.logical_id), src, None, "own" if versioned else None, own=True))
            elif isinstance(item, str):
                layers.append(parse_layer_arn(item, src))
            else:
                layers.append(LayerRef(_str(item) if not isinstance(item, Unknown) else item, src))
        tracing_block = _first(body.get("tracing_config"))
        tracing = None
        if tracing_block:
            tracing = Sourced(
                _str(tf.value(tracing_block.get("mode"))), tf.src("resource", kind, name, "tracing_config")
            )
        dead = None
        if _first(body.get("dead_letter_config")):
            dead = Sourced("dead_letter_config", tf.src("resource", kind, name, "dead_letter_config"))
        for cname, cbody in tf.of_type("aws_lambda_function_event_invoke_config"):
            if self.function_key(cbody.get("function_name")) == name and _first(
                _first(cbody.get("destination_config")).get("on_failure")
            ):
                dead = Sourced(
                    "on_failure destination", tf.src("resource", "aws_lambda_function_event_invoke_config", cname)
                )
        signing = None
        if "code_signing_config_arn" in body:
            src = tf.src("resource", kind, name, "code_signing_config_arn")
            ref = tf.value(body["code_signing_config_arn"])
            mode: str | Unknown = Unknown("code signing config defined elsewhere")
            if isinstance(ref, ResourceRef) and ref.logical_id.startswith("resource.aws_lambda_code_signing_config."):
                cbody, _ = tf.blocks[("resource", "aws_lambda_code_signing_config", ref.logical_id.split(".", 2)[2])]
                policies = _first(cbody.get("policies"))
                mode = _str(tf.value(policies.get("untrusted_artifact_on_deployment", "Warn")))
            signing = Sourced(mode, src)
        ephemeral = _first(body.get("ephemeral_storage"))
        package_key = next((k for k in ("image_uri", "filename", "s3_key") if k in body), None)
        return FunctionSpec(
            name=f"aws_lambda_function.{name}",
            platform="aws",
            src=tf.src("resource", kind, name),
            fmt="terraform",
            runtime=sourced("runtime", _str),
            handler=sourced("handler", _str),
            memory_mb=sourced("memory_size", _int),
            timeout_s=sourced("timeout", _int),
            ephemeral_mb=Sourced(
                _int(tf.value(ephemeral.get("size"))), tf.src("resource", kind, name, "ephemeral_storage")
            )
            if ephemeral
            else None,
            reserved_concurrency=sourced("reserved_concurrent_executions", _int),
            environment=env,
            layers=tuple(layers),
            package=sourced(package_key, _str) if package_key else None,
            package_type="Image" if "image_uri" in body or tf.value(body.get("package_type")) == "Image" else "Zip",
            triggers=tuple(self.triggers.get(name, [])),
            role=role,
            tracing=tracing,
            dead_letter=dead,
            code_signing=signing,
            vpc=bool(_first(body.get("vpc_config"))),
        )

    def env(self, variables: Any, src: Src) -> tuple[EnvVar, ...]:
        if not isinstance(variables, dict):
            return ()
        out = []
        for key, val in variables.items():
            ref = val.expr if isinstance(val, Unknown) and "access_key" in val.expr else ""
            if isinstance(val, ResourceRef):
                ref = f"{val.logical_id.removeprefix('resource.')}.{val.attribute}"
                if val.logical_id.startswith("resource.aws_iam_access_key.") and "secret" in val.attribute:
                    ref = f"AccessKey secret {ref}"
            out.append(EnvVar(str(key), _str(val) if not isinstance(val, ResourceRef) else Unknown(ref), src, ref))
        return tuple(out)

    # ---- GCP
    def gcp_entry_points(self) -> None:
        tf = self.tf
        invoker_types = (
            "google_cloudfunctions_function_iam_member",
            "google_cloudfunctions_function_iam_binding",
            "google_cloudfunctions2_function_iam_member",
            "google_cloudfunctions2_function_iam_binding",
            "google_cloud_run_service_iam_member",
            "google_cloud_run_service_iam_binding",
            "google_cloud_run_v2_service_iam_member",
            "google_cloud_run_v2_service_iam_binding",
        )
        for rtype in invoker_types:
            for name, body in tf.of_type(rtype):
                members = [
                    m
                    for m in _as_list(tf.value(body.get("member"))) + _as_list(tf.value(body.get("members")))
                    if isinstance(m, str)
                ]
                public = [m for m in members if m in _PUBLIC_MEMBERS]
                if not public:
                    continue
                role = tf.value(body.get("role"))
                key = "member" if "member" in body else "members"
                src = tf.src("resource", rtype, name, key)
                for ref in tf.refs_in(body):
                    if ref.startswith(
                        ("resource.google_cloudfunctions_function.", "resource.google_cloudfunctions2_function.")
                    ):
                        self.add_trigger(
                            ref,
                            Trigger("gcp-http", src, public[0], True, f"{rtype}.{name} grants {role} to {public[0]}"),
                        )

    def gcp_function(self, rtype: str, name: str, body: dict[str, Any]) -> FunctionSpec:
        tf = self.tf
        gen2 = rtype == "google_cloudfunctions2_function"
        service = _first(body.get("service_config")) if gen2 else body
        build = _first(body.get("build_config")) if gen2 else body
        skey = "service_config" if gen2 else None

        def src(key: str) -> Src:
            return tf.src("resource", rtype, name, key if not gen2 else (key if key in body else skey))

        def sourced(container: dict[str, Any], key: str, conv: Any) -> Any:
            if key not in container:
                return None
            return Sourced(conv(tf.value(container[key])), src(key))

        env = self.env(tf.value(service.get("environment_variables")), src("environment_variables"))
        triggers = list(self.triggers.get(f"resource.{rtype}.{name}", []))
        ingress = _str(tf.value(service.get("ingress_settings", "ALLOW_ALL")))
        if ingress != "ALLOW_ALL":
            triggers = [Trigger(t.kind, t.src, t.auth, False, t.detail + f" (ingress {ingress})") for t in triggers]
        sa = sourced(service, "service_account_email", _str)
        extra: list[tuple[str, str]] = []
        if sa is not None:
            for ref in tf.refs_in(service.get("service_account_email")):
                for role in self.sa_roles.get(ref, []):
                    extra.append(("gcp_basic_role", f"{ref.removeprefix('resource.')} has {role}"))
        memory = sourced(service, "available_memory" if gen2 else "available_memory_mb", _int)
        return FunctionSpec(
            name=f"{rtype}.{name}",
            platform="gcp",
            src=tf.src("resource", rtype, name),
            fmt="terraform",
            runtime=sourced(build, "runtime", _str),
            handler=sourced(build, "entry_point", _str),
            memory_mb=memory,
            timeout_s=sourced(service, "timeout_seconds" if gen2 else "timeout", _int),
            reserved_concurrency=sourced(service, "max_instance_count" if gen2 else "max_instances", _int),
            environment=env,
            triggers=tuple(triggers),
            service_account=sa,
            extra=tuple(extra),
        )

    # ---- Azure
    def azure_function_app(self, rtype: str, name: str, body: dict[str, Any]) -> FunctionSpec:
        tf = self.tf
        settings = self.env(tf.value(body.get("app_settings")), tf.src("resource", rtype, name, "app_settings"))
        if "storage_account_access_key" in body:
            val = tf.value(body["storage_account_access_key"])
            if isinstance(val, str):
                settings += (
                    EnvVar(
                        "storage_account_access_key",
                        f"AccountKey={val}",
                        tf.src("resource", rtype, name, "storage_account_access_key"),
                    ),
                )
        site = _first(body.get("site_config"))
        stack = _first(site.get("application_stack"))
        runtime = None
        for key in ("python_version", "node_version", "dotnet_version", "java_version", "powershell_core_version"):
            if key in stack:
                lang = key.split("_")[0].replace("powershell", "powershell")
                value = _str(tf.value(stack[key]))
                runtime = Sourced(
                    f"{lang}{value}" if isinstance(value, str) else value, tf.src("resource", rtype, name, key)
                )
        auth = _first(body.get("auth_settings_v2")) or _first(body.get("auth_settings"))
        enabled = tf.value(auth.get("auth_enabled", auth.get("enabled", False))) if auth else False
        extra: tuple[tuple[str, str], ...] = (("app_service_auth", "enabled" if enabled is True else "disabled"),)
        if tf.value(body.get("https_only")) is not True:
            extra += (("https_only", "false"),)
        triggers = tuple(self.triggers.get(f"resource.{rtype}.{name}", []))
        if enabled is True:
            triggers = tuple(Trigger(t.kind, t.src, "app-service-auth", False, t.detail) for t in triggers)
        limit = site.get("app_scale_limit")
        return FunctionSpec(
            name=f"{rtype}.{name}",
            platform="azure",
            src=tf.src("resource", rtype, name),
            fmt="terraform",
            runtime=runtime,
            reserved_concurrency=Sourced(_int(tf.value(limit)), tf.src("resource", rtype, name, "app_scale_limit"))
            if limit is not None
            else None,
            environment=settings,
            triggers=triggers,
            extra=extra,
        )

    def azure_functions(self) -> None:
        from sas.scan.iac.azure import http_trigger

        tf = self.tf
        for name, body in tf.of_type("azurerm_function_app_function"):
            config = tf.value(body.get("config_json"))
            if isinstance(config, str):
                try:
                    config = json.loads(config)
                except ValueError:
                    config = None
            app = next((r for r in tf.refs_in(body.get("function_app_id"))), None)
            if app is None or not isinstance(config, dict):
                continue
            src = tf.src("resource", "azurerm_function_app_function", name, "config_json")
            for binding in _as_list(config.get("bindings")):
                trig = http_trigger(binding, src, f"azurerm_function_app_function.{name}")
                if trig is not None:
                    self.add_trigger(app, trig)


def parse(folder: str, files: list[tuple[str, str]]) -> Deployment:
    """Parse the ``.tf``/``.tf.json`` files of one folder together."""
    tf = _Folder(folder, files)
    builder = _Builder(tf)
    builder.collect_iam()
    builder.aws_entry_points()
    builder.gcp_entry_points()
    builder.azure_functions()
    functions = [builder.aws_function(n, b) for n, b in tf.of_type("aws_lambda_function")]
    for rtype in ("google_cloudfunctions_function", "google_cloudfunctions2_function"):
        functions += [builder.gcp_function(rtype, n, b) for n, b in tf.of_type(rtype)]
    for rtype in ("azurerm_linux_function_app", "azurerm_windows_function_app", "azurerm_function_app"):
        functions += [builder.azure_function_app(rtype, n, b) for n, b in tf.of_type(rtype)]
    used = {f.role.name for f in functions if f.role is not None}
    free = tuple(builder.role(n) for n, _ in tf.of_type("aws_iam_role") if f"aws_iam_role.{n}" not in used)
    for name, _body in tf.blocks.items():
        if name[0] == "resource" and name[1].startswith("module"):
            continue
    path = files[0][0] if len(files) == 1 else (folder or ".")
    return Deployment("terraform", path, tuple(functions), tuple(tf.issues), tuple(builder.exposures), roles=free)
