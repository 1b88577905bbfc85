"""Static evaluation of CloudFormation intrinsic functions, as far as a template alone allows.

``Ref`` to a parameter gives its default; ``Fn::Sub``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split``,
``Fn::FindInMap``, ``Fn::If`` (with conditions evaluated from defaults) and ``Fn::Equals`` are computed.
What depends on the deployed stack (``Fn::GetAtt``, ``Fn::ImportValue``, a parameter without default,
``AWS::AccountId``) becomes :class:`~sas.scan.iac.model.Unknown`, except that pseudo parameters inside a
``Fn::Sub`` string stay written as ``${AWS::AccountId}``, which is exactly what ARN checks need to know
("this account"). ``Ref`` to a resource resolves to :class:`ResourceRef` so that parsers can link a
function to its role, URL or layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sas.scan.iac.model import Unknown
from sas.scan.iac.yamlsrc import brief


@dataclass(frozen=True, slots=True)
class ResourceRef:
    """``!Ref X`` or ``!GetAtt X.Attr`` pointing at a resource of the same template."""

    logical_id: str
    attribute: str = ""

    def __str__(self) -> str:
        return f"!GetAtt {self.logical_id}.{self.attribute}" if self.attribute else f"!Ref {self.logical_id}"


class _NoValue:
    """``AWS::NoValue``: the property is removed."""


NO_VALUE = _NoValue()
PSEUDO = frozenset(
    {
        "AWS::AccountId",
        "AWS::Region",
        "AWS::StackName",
        "AWS::StackId",
        "AWS::Partition",
        "AWS::URLSuffix",
        "AWS::NotificationARNs",
    }
)
_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


class Evaluator:
    """Evaluates intrinsics against one template's Parameters, Mappings, Conditions and Resources."""

    def __init__(self, template: dict[str, Any], overrides: dict[str, Any] | None = None) -> None:
        params = template.get("Parameters")
        self.params: dict[str, Any] = {}
        if isinstance(params, dict):
            for name, spec in params.items():
                if isinstance(spec, dict) and "Default" in spec:
                    self.params[str(name)] = spec["Default"]
        self.params.update(overrides or {})
        mappings = template.get("Mappings")
        self.mappings: dict[str, Any] = mappings if isinstance(mappings, dict) else {}
        conditions = template.get("Conditions")
        self.conditions: dict[str, Any] = conditions if isinstance(conditions, dict) else {}
        resources = template.get("Resources")
        self.resources: dict[str, Any] = resources if isinstance(resources, dict) else {}
        self._budget = 200_000  # bounds the walk over alias-shared structures
        self._cond_cache: dict[str, bool | Unknown] = {}

    def value(self, node: Any, depth: int = 0) -> Any:
        """Evaluate ``node``: scalars pass, containers recurse, intrinsics compute or become Unknown."""
        self._budget -= 1
        if self._budget < 0 or depth > 60:
            return Unknown("template too deeply nested or too large to evaluate")
        if isinstance(node, dict):
            if len(node) == 1:
                key = next(iter(node))
                if key == "Ref" or (isinstance(key, str) and key.startswith("Fn::")):
                    return self._intrinsic(key, node[key], depth)
            out: dict[Any, Any] = {}
            for k, v in node.items():
                val = self.value(v, depth + 1)
                if val is not NO_VALUE:
                    out[k] = val
            return out
        if isinstance(node, list):
            return [v for v in (self.value(x, depth + 1) for x in node) if v is not NO_VALUE]
        return node

    def _intrinsic(self, fn: str, arg: Any, depth: int) -> Any:
        if fn == "Ref":
            return self.ref(brief(arg))
        if fn == "Fn::GetAtt":
            parts = arg.split(".", 1) if isinstance(arg, str) else arg
            if isinstance(parts, list) and len(parts) == 2 and str(parts[0]) in self.resources:
                return ResourceRef(str(parts[0]), str(self.value(parts[1], depth + 1)))
            return Unknown(f"!GetAtt {brief(arg)}")
        if fn == "Fn::Sub":
            return self._sub(arg, depth)
        if fn == "Fn::Join":
            if isinstance(arg, list) and len(arg) == 2:
                sep = self.value(arg[0], depth + 1)
                items = self.value(arg[1], depth + 1)
                if isinstance(sep, str) and isinstance(items, list):
                    if all(isinstance(i, str | int | float) for i in items):
                        return sep.join(str(i) for i in items)
                    return Unknown("!Join " + sep.join(str(i) for i in items))
            return Unknown(f"!Join {brief(arg)}")
        if fn == "Fn::Select":
            if isinstance(arg, list) and len(arg) == 2:
                index = self.value(arg[0], depth + 1)
                items = self.value(arg[1], depth + 1)
                try:
                    if isinstance(items, list):
                        return items[int(index)]
                except (ValueError, TypeError, IndexError):
                    pass
            return Unknown(f"!Select {brief(arg)}")
        if fn == "Fn::Split":
            if isinstance(arg, list) and len(arg) == 2:
                sep = self.value(arg[0], depth + 1)
                text = self.value(arg[1], depth + 1)
                if isinstance(sep, str) and sep and isinstance(text, str):
                    return text.split(sep)
            return Unknown(f"!Split {brief(arg)}")
        if fn == "Fn::FindInMap":
            if isinstance(arg, list) and len(arg) >= 3:
                keys = [self.value(a, depth + 1) for a in arg[:3]]
                if all(isinstance(k, str | int) for k in keys):
                    top = self.mappings.get(str(keys[0]))
                    mid = top.get(str(keys[1])) if isinstance(top, dict) else None
                    if isinstance(mid, dict) and str(keys[2]) in mid:
                        return self.value(mid[str(keys[2])], depth + 1)
            return Unknown(f"!FindInMap {brief(arg)}")
        if fn == "Fn::If":
            if isinstance(arg, list) and len(arg) == 3:
                cond = self.condition(brief(arg[0]))
                if isinstance(cond, bool):
                    return self.value(arg[1] if cond else arg[2], depth + 1)
                # both branches are possible: keep the worse one visible by returning an Unknown
                return Unknown(f"!If [{brief(arg[0])}, ...]")
            return Unknown(f"!If {brief(arg)}")
        if fn in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            return self._condition_expr({fn: arg}, depth)
        if fn == "Fn::Base64":
            return self.value(arg, depth + 1)
        if fn == "Fn::ImportValue":
            return Unknown(f"!ImportValue {self.value(arg, depth + 1)}")
        return Unknown(f"{fn.replace('Fn::', '!')} {brief(arg)}")

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.params:
            return self.value(self.params[name])
        if name in self.resources:
            return ResourceRef(name)
        if name in PSEUDO:
            return Unknown(name)
        return Unknown(f"!Ref {name}")

    def _sub(self, arg: Any, depth: int) -> Any:
        if isinstance(arg, list) and len(arg) == 2 and isinstance(arg[0], str):
            text, local = arg[0], arg[1] if isinstance(arg[1], dict) else {}
        elif isinstance(arg, str):
            text, local = arg, {}
        else:
            return Unknown(f"!Sub {brief(arg)}")

        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in local:
                val = self.value(local[name], depth + 1)
            elif "." in name and name.split(".", 1)[0] in self.resources:
                return match.group(0)  # ${Res.Attr}: stays symbolic
            else:
                val = self.ref(name)
            if isinstance(val, str | int | float) and not isinstance(val, bool):
                return str(val)
            return match.group(0)  # pseudo parameters, resources and unknowns stay written as ${...}

        return _SUB_VAR.sub(repl, text)

    def condition(self, name: str) -> bool | Unknown:
        if name in self._cond_cache:
            return self._cond_cache[name]
        self._cond_cache[name] = Unknown(f"condition {name}")  # guards against cycles
        expr = self.conditions.get(name)
        result = self._condition_expr(expr, 0) if expr is not None else Unknown(f"condition {name}")
        self._cond_cache[name] = result
        return result

    def _condition_expr(self, expr: Any, depth: int) -> bool | Unknown:
        if not isinstance(expr, dict) or len(expr) != 1:
            return Unknown("condition")
        fn, arg = next(iter(expr.items()))
        if fn == "Condition":
            return self.condition(brief(arg))
        if fn == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
            a, b = (self.value(x, depth + 1) for x in arg)
            if isinstance(a, Unknown | ResourceRef) or isinstance(b, Unknown | ResourceRef):
                return Unknown("Fn::Equals")
            return str(a) == str(b)
        if fn in ("Fn::Not", "Fn::And", "Fn::Or") and isinstance(arg, list):
            vals = [self._condition_expr(x, depth + 1) for x in arg]
            if any(isinstance(v, Unknown) for v in vals):
                return Unknown(fn)
            bools = [bool(v) for v in vals]
            if fn == "Fn::Not":
                return not bools[0] if bools else Unknown(fn)
            return all(bools) if fn == "Fn::And" else any(bools)
        return Unknown(brief(fn))


def refers_to(node: Any, logical_ids: set[str]) -> set[str]:
    """Logical ids that an unevaluated node mentions (Ref, GetAtt, or ``${X}``/``${X.Arn}`` in a Sub)."""
    found: set[str] = set()
    stack = [node]
    budget = 10_000
    while stack and budget:
        budget -= 1
        cur = stack.pop()
        if isinstance(cur, dict):
            for key, val in cur.items():
                if key == "Ref" and isinstance(val, str) and val in logical_ids:
                    found.add(val)
                elif key == "Fn::GetAtt":
                    # a mapping or number here (a broken template) must not stop the checks of every other resource
                    head = (
                        val.split(".", 1)[0]
                        if isinstance(val, str)
                        else (val[0] if isinstance(val, list) and val else None)
                    )
                    if isinstance(head, str) and head in logical_ids:
                        found.add(head)
                else:
                    stack.append(val)
        elif isinstance(cur, list):
            stack.extend(cur)
        elif isinstance(cur, str) and "${" in cur:
            for name in _SUB_VAR.findall(cur):
                head = name.split(".", 1)[0]
                if head in logical_ids:
                    found.add(head)
    return found
