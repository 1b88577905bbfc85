"""AWS SAM and CloudFormation templates (YAML or JSON) into :class:`~sas.scan.iac.model.FunctionSpec`.

Why not cfn-lint or aws-sam-translator: cfn-lint (1.58) pulls ~80 MB of dependencies (sympy) and no longer
applies the SAM transform; aws-sam-translator applies it offline but expects a valid, fully specified
template and fails on the partial or broken ones CI sees, and needs boto3 and pydantic at import. What
the checks need from the transform is small and well documented (Globals merging, the implicit execution
role with AWSLambdaBasicExecutionRole plus ``Policies``, policy templates, ``Events`` with their API auth,
``FunctionUrlConfig``), so it is done here on line-aware YAML, and every value keeps its line.
"""

from __future__ import annotations

import re
from typing import Any

from sas.scan.iac import sam_policies
from sas.scan.iac.intrinsics import Evaluator, ResourceRef, refers_to
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
from sas.scan.iac.yamlsrc import LMap, brief, line_of

SAM_FUNCTION = "AWS::Serverless::Function"
CFN_FUNCTION = "AWS::Lambda::Function"
_LAYER_ARN = re.compile(r"^arn:aws[\w-]*:lambda:[^:]*:([^:]*):layer:([^:]+)(?::(\d+|@[^@]+@))?$")
_KNOWN_TYPE = re.compile(r"^(AWS|Alexa|Custom)::[A-Za-z0-9]+(::[A-Za-z0-9]+)*$|^Custom::")
_LAMBDA_TYPES = {
    SAM_FUNCTION,
    CFN_FUNCTION,
    "AWS::Lambda::Url",
    "AWS::Lambda::Permission",
    "AWS::Lambda::LayerVersion",
    "AWS::Lambda::LayerVersionPermission",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::CodeSigningConfig",
    "AWS::Lambda::Alias",
    "AWS::Lambda::Version",
    "AWS::Lambda::Function",
    "AWS::Serverless::LayerVersion",
    "AWS::Serverless::Api",
    "AWS::Serverless::HttpApi",
    "AWS::Serverless::Application",
    "AWS::Serverless::SimpleTable",
    "AWS::Serverless::StateMachine",
    "AWS::Serverless::Connector",
    "AWS::Serverless::GraphQLApi",
}
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


def looks_like(doc: Any) -> bool:
    """A CloudFormation or SAM template: format version, a SAM transform, or AWS:: resource types."""
    if not isinstance(doc, dict):
        return False
    if "AWSTemplateFormatVersion" in doc:
        return True
    transform = doc.get("Transform")
    if isinstance(transform, str | list) and "AWS::Serverless" in str(transform):
        return True
    resources = doc.get("Resources")
    if isinstance(resources, dict):
        return any(isinstance(r, dict) and str(r.get("Type", "")).startswith("AWS::") for r in resources.values())
    return False


def _str(value: Any) -> str | Unknown:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, ResourceRef):
        return Unknown(str(value))
    if isinstance(value, Unknown):
        return value
    return Unknown(brief(value)[:120])  # an alias-shared node can stand for billions of items


def _int(value: Any) -> int | Unknown:
    if isinstance(value, bool):
        return Unknown(str(value))
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return Unknown(value)
    return value if isinstance(value, Unknown) else Unknown(str(value)[:120])


def _merge_globals(glob: Any, props: Any) -> Any:
    """SAM Globals: scalars are overridden, maps merged (recursively), lists appended (globals first)."""
    if isinstance(glob, dict) and isinstance(props, dict):
        out = LMap(glob)
        out.key_lines = dict(getattr(glob, "key_lines", {}))
        out.line = getattr(props, "line", None)
        for key, val in props.items():
            out[key] = _merge_globals(glob[key], val) if key in glob else val
            if isinstance(props, LMap) and key in props.key_lines:
                out.key_lines[key] = props.key_lines[key]
        return out
    if isinstance(glob, list) and isinstance(props, list):
        return glob + props
    return props


class _Parser:
    def __init__(self, doc: dict[str, Any], path: str, fmt: str) -> None:
        self.doc = doc
        self.path = path
        self.fmt = fmt
        self.ev = Evaluator(doc)
        res = doc.get("Resources")
        self.resources: dict[str, Any] = res if isinstance(res, dict) else {}
        self.ids = set(self.resources)
        self.issues: list[ParseIssue] = []
        glob = doc.get("Globals")
        self.globals: dict[str, Any] = glob if isinstance(glob, dict) else {}
        self.extra_triggers: dict[str, list[Trigger]] = {}
        self.dead_letters: dict[str, Sourced[str]] = {}
        self.exposures: list[Trigger] = []
        self.role_attachments: dict[str, list[Statement]] = {}

    # ---- helpers
    def src(self, container: Any, key: Any = None) -> Src:
        return Src(self.path, line_of(container, key) if key is not None else getattr(container, "line", None))

    def typed(self, kind: str) -> list[tuple[str, Any, Any]]:
        """(logical id, resource, properties) of every resource of ``kind``."""
        out = []
        for rid, res in self.resources.items():
            if isinstance(res, dict) and res.get("Type") == kind:
                # a resource whose Condition is false with the defaults is not deployed; unknown ones are
                if isinstance(res.get("Condition"), str) and self.ev.condition(res["Condition"]) is False:
                    continue
                props = res.get("Properties")
                out.append((str(rid), res, props if isinstance(props, dict) else LMap()))
        return out

    def target_ids(self, node: Any) -> set[str]:
        return refers_to(node, self.ids)

    # ---- entry
    def run(self) -> Deployment:
        if not self.resources:
            self.issues.append(ParseIssue(Src(self.path, line_of(self.doc, "Resources")), "template has no Resources"))
        for rid, res in self.resources.items():
            if not isinstance(res, dict) or not isinstance(res.get("Type"), str):
                self.issues.append(
                    ParseIssue(self.src(self.resources, rid), f"resource {rid} has no Type; it was not checked")
                )
                continue
            kind = res["Type"]
            if not _KNOWN_TYPE.match(kind) or (
                "lambda" in kind.lower() and kind.startswith("AWS::") and kind not in _LAMBDA_TYPES
            ):
                self.issues.append(
                    ParseIssue(self.src(self.resources, rid), f"resource {rid} has unknown type {kind!r}; not checked")
                )
        # SAM names the role it creates "<Function>Role"; policies elsewhere may attach to it by that id
        for rid, _, props in self.typed(SAM_FUNCTION):
            if "Role" not in props:
                self.ids.add(f"{rid}Role")
        self._attachments()
        self._urls_and_permissions()
        self._api_methods()
        self._invoke_configs()
        self._layer_permissions()
        functions = [self._function(rid, props, sam=True) for rid, _, props in self.typed(SAM_FUNCTION)]
        functions += [self._function(rid, props, sam=False) for rid, _, props in self.typed(CFN_FUNCTION)]
        used_roles = {f.role.name for f in functions if f.role is not None}
        free_roles = tuple(self._role(rid) for rid, _, _ in self.typed("AWS::IAM::Role") if rid not in used_roles)
        return Deployment(
            self.fmt,
            self.path,
            tuple(functions),
            tuple(self.issues),
            tuple(self.exposures),
            roles=free_roles,
        )

    # ---- IAM
    def _attachments(self) -> None:
        """AWS::IAM::Policy and ManagedPolicy resources that name roles: their statements join those roles."""
        for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for rid, _, props in self.typed(kind):
                roles = props.get("Roles")
                targets = self.target_ids(roles) if roles is not None else set()
                stmts = doc_statements(
                    self.ev.value(props.get("PolicyDocument")),
                    self.path,
                    line_of(props, "PolicyDocument"),
                    f"{kind.rsplit('::', 1)[-1]} {rid}",
                )
                for target in targets:
                    self.role_attachments.setdefault(target, []).extend(stmts)

    def _managed(self, arns: Any, container: Any, key: str) -> tuple[list[Statement], list[Sourced[str]]]:
        stmts: list[Statement] = []
        refs: list[Sourced[str]] = []
        raw_list = arns if isinstance(arns, list) else [arns]
        for index, raw in enumerate(raw_list):
            line = line_of(arns, index) if isinstance(arns, list) else line_of(container, key)
            src = Src(self.path, line)
            val = self.ev.value(raw)
            if isinstance(val, ResourceRef) and val.logical_id in self.resources:
                res = self.resources[val.logical_id]
                props = res.get("Properties") if isinstance(res, dict) else None
                if isinstance(props, dict):
                    stmts += doc_statements(
                        self.ev.value(props.get("PolicyDocument")),
                        self.path,
                        line_of(props, "PolicyDocument"),
                        f"ManagedPolicy {val.logical_id}",
                    )
                refs.append(Sourced(f"!Ref {val.logical_id}", src))
                continue
            text = _str(val)
            if isinstance(text, Unknown):
                refs.append(Sourced(text, src))
                continue
            name = managed_name(text)
            if name is not None and name in AWS_MANAGED:
                for effect, acts, not_acts, res_list in AWS_MANAGED[name]:
                    stmts.append(Statement(effect, acts, not_acts, res_list, src=src, origin=f"AWS managed {name}"))
                refs.append(Sourced(text, src))
            else:
                refs.append(Sourced(Unknown(f"managed policy {text}"), src))
        return stmts, refs

    def _role(self, rid: str) -> RoleSpec:
        res = self.resources.get(rid)
        props = res.get("Properties") if isinstance(res, dict) else None
        if not isinstance(props, dict):
            props = LMap()
        stmts: list[Statement] = []
        policies = props.get("Policies")
        if isinstance(policies, list):
            for index, pol in enumerate(policies):
                if not isinstance(pol, dict):
                    continue
                name = _str(self.ev.value(pol.get("PolicyName", f"#{index}")))
                stmts += doc_statements(
                    self.ev.value(pol.get("PolicyDocument")),
                    self.path,
                    line_of(policies, index),
                    f"Role {rid} policy {name}",
                )
        managed_stmts: list[Statement] = []
        refs: list[Sourced[str]] = []
        if "ManagedPolicyArns" in props:
            managed_stmts, refs = self._managed(props["ManagedPolicyArns"], props, "ManagedPolicyArns")
        stmts += managed_stmts + self.role_attachments.get(rid, [])
        boundary = None
        if "PermissionsBoundary" in props:
            boundary = Sourced(
                _str(self.ev.value(props["PermissionsBoundary"])), self.src(props, "PermissionsBoundary")
            )
        return RoleSpec(rid, self.src(self.resources, rid), tuple(stmts), tuple(refs), boundary)

    def _sam_role(self, rid: str, props: Any) -> RoleSpec:
        """The role SAM creates when a function has no Role: basic execution plus its Policies."""
        src = self.src(props, "Policies") if "Policies" in props else self.src(self.resources, rid)
        stmts, refs = self._managed(BASIC_EXECUTION, props, "Policies")
        policies = props.get("Policies")
        items = policies if isinstance(policies, list) else ([policies] if policies is not None else [])
        for index, item in enumerate(items):
            line = line_of(policies, index) if isinstance(policies, list) else line_of(props, "Policies")
            stmts += self._sam_policy(item, line, refs)
        stmts += self.role_attachments.get(f"{rid}Role", [])
        boundary = None
        if "PermissionsBoundary" in props:
            boundary = Sourced(
                _str(self.ev.value(props["PermissionsBoundary"])), self.src(props, "PermissionsBoundary")
            )
        return RoleSpec(f"{rid}Role", src, tuple(stmts), tuple(refs), boundary)

    def _sam_policy(self, item: Any, line: int | None, refs: list[Sourced[str]]) -> list[Statement]:
        src = Src(self.path, line)
        if isinstance(item, dict) and len(item) == 1 and "Statement" not in item:
            name = str(next(iter(item)))
            if name.startswith("Fn::") or name == "Ref":
                val = _str(self.ev.value(item))
                return self._managed_by_name(val, src, refs)
            params_raw = self.ev.value(item[name])
            params = {}
            if isinstance(params_raw, dict):
                for key, val in params_raw.items():
                    text = _str(val)
                    params[str(key)] = text if isinstance(text, str) else f"${{{key}}}"
            expanded = sam_policies.expand(name, params)
            if expanded is None:
                return [Statement("Allow", src=src, origin=f"SAM policy template {name} (not known)", unresolved=True)]
            return [Statement("Allow", acts, (), res, src=src, origin=f"SAM {name}") for acts, res in expanded]
        if isinstance(item, dict):
            return doc_statements(self.ev.value(item), self.path, line, "SAM inline policy")
        return self._managed_by_name(_str(self.ev.value(item)), src, refs)

    def _managed_by_name(self, val: str | Unknown, src: Src, refs: list[Sourced[str]]) -> list[Statement]:
        if isinstance(val, Unknown):
            refs.append(Sourced(val, src))
            return []
        arn = val if val.startswith("arn:") else f"arn:aws:iam::aws:policy/{val}"
        stmts, more = self._managed(arn, None, "")
        refs.extend(Sourced(r.value, src) for r in more)
        return [Statement(s.effect, s.actions, s.not_actions, s.resources, src=src, origin=s.origin) for s in stmts]

    def _function_role(self, rid: str, props: Any, sam: bool) -> RoleSpec | None:
        if "Role" not in props:
            return self._sam_role(rid, props) if sam else None
        val = self.ev.value(props["Role"])
        if isinstance(val, ResourceRef) and val.logical_id in self.resources:
            return self._role(val.logical_id)
        text = _str(val)
        name = text if isinstance(text, str) else str(text)
        return RoleSpec(name, self.src(props, "Role"), external=True)

    # ---- entry points attached by other resources
    def _add_trigger(self, fid: str, trig: Trigger) -> None:
        self.extra_triggers.setdefault(fid, []).append(trig)

    def _functions_in(self, node: Any) -> set[str]:
        out = set()
        for rid in self.target_ids(node):
            res = self.resources.get(rid)
            if isinstance(res, dict) and res.get("Type") in (SAM_FUNCTION, CFN_FUNCTION, "AWS::Lambda::Alias"):
                if res.get("Type") == "AWS::Lambda::Alias":
                    props = res.get("Properties")
                    out |= self._functions_in(props.get("FunctionName") if isinstance(props, dict) else None)
                else:
                    out.add(rid)
        return out

    def _urls_and_permissions(self) -> None:
        for rid, _, props in self.typed("AWS::Lambda::Url"):
            auth = _str(self.ev.value(props.get("AuthType", "NONE")))
            for fid in self._functions_in(props.get("TargetFunctionArn")):
                self._add_trigger(
                    fid,
                    Trigger(
                        "function-url", self.src(props, "AuthType"), auth, _public_auth(auth), f"AWS::Lambda::Url {rid}"
                    ),
                )
        for rid, _, props in self.typed("AWS::Lambda::Permission"):
            principal = self.ev.value(props.get("Principal"))
            if principal not in ("*", {"AWS": "*"}):
                continue
            scoped = any(k in props for k in ("SourceArn", "SourceAccount", "PrincipalOrgID"))
            url_auth = _str(self.ev.value(props.get("FunctionUrlAuthType", "")))
            public: bool | None = not scoped
            if url_auth == "AWS_IAM":
                public = False
            for fid in self._functions_in(props.get("FunctionName")):
                self._add_trigger(
                    fid,
                    Trigger(
                        "permission",
                        self.src(props, "Principal"),
                        "NONE" if public else "scoped",
                        public,
                        f"AWS::Lambda::Permission {rid} Principal '*'",
                    ),
                )

    def _api_methods(self) -> None:
        for rid, _, props in self.typed("AWS::ApiGateway::Method"):
            auth = _str(self.ev.value(props.get("AuthorizationType", "NONE")))
            key = self.ev.value(props.get("ApiKeyRequired", False)) is True
            integration = props.get("Integration")
            for fid in self._functions_in(integration):
                public = _public_auth(auth) and not key
                self._add_trigger(
                    fid,
                    Trigger(
                        "rest-api",
                        self.src(props, "AuthorizationType" if "AuthorizationType" in props else None),
                        "API_KEY" if key and auth == "NONE" else auth,
                        public,
                        f"AWS::ApiGateway::Method {rid}",
                    ),
                )
        integrations = {rid: props for rid, _, props in self.typed("AWS::ApiGatewayV2::Integration")}
        for rid, _, props in self.typed("AWS::ApiGatewayV2::Route"):
            auth = _str(self.ev.value(props.get("AuthorizationType", "NONE")))
            targets: set[str] = set()
            for iid in self.target_ids(props.get("Target")):
                if iid in integrations:
                    targets |= self._functions_in(integrations[iid].get("IntegrationUri"))
            for fid in targets:
                self._add_trigger(
                    fid,
                    Trigger(
                        "http-api",
                        self.src(props, "AuthorizationType" if "AuthorizationType" in props else None),
                        auth,
                        _public_auth(auth),
                        f"AWS::ApiGatewayV2::Route {rid}",
                    ),
                )

    def _invoke_configs(self) -> None:
        for rid, _, props in self.typed("AWS::Lambda::EventInvokeConfig"):
            dest = props.get("DestinationConfig")
            if isinstance(dest, dict) and "OnFailure" in dest:
                for fid in self._functions_in(props.get("FunctionName")):
                    self.dead_letters[fid] = Sourced(f"EventInvokeConfig {rid}", self.src(props, "DestinationConfig"))

    def _layer_permissions(self) -> None:
        for rid, _, props in self.typed("AWS::Lambda::LayerVersionPermission"):
            principal = self.ev.value(props.get("Principal"))
            if principal == "*" and "OrganizationId" not in props:
                self.exposures.append(
                    Trigger(
                        "layer-permission",
                        self.src(props, "Principal"),
                        "NONE",
                        True,
                        f"AWS::Lambda::LayerVersionPermission {rid} shares the layer with every AWS account",
                    )
                )

    # ---- functions
    def _function(self, rid: str, props: Any, sam: bool) -> FunctionSpec:
        if sam:
            glob = self.globals.get("Function")
            if isinstance(glob, dict):
                props = _merge_globals(glob, props)
        get = props.get

        def sourced_str(key: str) -> Sourced[str] | None:
            return Sourced(_str(self.ev.value(get(key))), self.src(props, key)) if key in props else None

        def sourced_int(key: str) -> Sourced[int] | None:
            return Sourced(_int(self.ev.value(get(key))), self.src(props, key)) if key in props else None

        env = self._environment(props)
        layers = self._layers(props)
        triggers = list(self._events(rid, props)) if sam else []
        if sam and "FunctionUrlConfig" in props:
            url = props["FunctionUrlConfig"]
            auth = _str(self.ev.value(url.get("AuthType", "NONE"))) if isinstance(url, dict) else Unknown("url")
            triggers.append(
                Trigger(
                    "function-url",
                    self.src(url, "AuthType")
                    if isinstance(url, dict) and "AuthType" in url
                    else self.src(props, "FunctionUrlConfig"),
                    auth,
                    _public_auth(auth),
                    "FunctionUrlConfig",
                )
            )
        triggers += self.extra_triggers.get(rid, [])
        tracing = sourced_str("Tracing") if sam else None
        if not sam and isinstance(get("TracingConfig"), dict):
            tc = get("TracingConfig")
            tracing = Sourced(_str(self.ev.value(tc.get("Mode", "PassThrough"))), self.src(tc, "Mode"))
        dead: Sourced[str] | None = None
        for key in ("DeadLetterQueue", "DeadLetterConfig"):
            if key in props:
                dead = Sourced(key, self.src(props, key))
        if sam and isinstance(get("EventInvokeConfig"), dict):
            dest = get("EventInvokeConfig").get("DestinationConfig")
            if isinstance(dest, dict) and "OnFailure" in dest:
                dead = Sourced("EventInvokeConfig.OnFailure", self.src(props, "EventInvokeConfig"))
        dead = dead or self.dead_letters.get(rid)
        package_key = next((k for k in ("ImageUri", "CodeUri", "InlineCode", "Code") if k in props), None)
        package = None
        if package_key is not None:
            raw = self.ev.value(get(package_key))
            package = Sourced(_str(raw) if not isinstance(raw, dict) else str(raw)[:200], self.src(props, package_key))
        ephemeral = None
        if isinstance(get("EphemeralStorage"), dict):
            eph = get("EphemeralStorage")
            ephemeral = Sourced(_int(self.ev.value(eph.get("Size"))), self.src(eph, "Size"))
        return FunctionSpec(
            name=rid,
            platform="aws",
            src=self.src(self.resources, rid),
            fmt=self.fmt,
            runtime=sourced_str("Runtime"),
            handler=sourced_str("Handler"),
            memory_mb=sourced_int("MemorySize"),
            timeout_s=sourced_int("Timeout"),
            ephemeral_mb=ephemeral,
            reserved_concurrency=sourced_int("ReservedConcurrentExecutions"),
            environment=env,
            layers=layers,
            package=package,
            package_type=str(self.ev.value(get("PackageType", "Image" if "ImageUri" in props else "Zip"))),
            triggers=tuple(triggers),
            role=self._function_role(rid, props, sam),
            tracing=tracing,
            dead_letter=dead,
            code_signing=self._code_signing(props),
            vpc="VpcConfig" in props,
        )

    def _environment(self, props: Any) -> tuple[EnvVar, ...]:
        env = props.get("Environment")
        variables = env.get("Variables") if isinstance(env, dict) else None
        if not isinstance(variables, dict):
            return ()
        out = []
        for name, raw in variables.items():
            val = self.ev.value(raw)
            ref = ""
            if isinstance(val, ResourceRef):
                res = self.resources.get(val.logical_id)
                kind = res.get("Type") if isinstance(res, dict) else ""
                ref = f"{kind} {val}"
            out.append(EnvVar(str(name), _str(val), self.src(variables, name), ref))
        return tuple(out)

    def _layers(self, props: Any) -> tuple[LayerRef, ...]:
        layers = props.get("Layers")
        if not isinstance(layers, list):
            return ()
        out = []
        for index, raw in enumerate(layers):
            src = Src(self.path, line_of(layers, index))
            val = self.ev.value(raw)
            if isinstance(val, ResourceRef):
                out.append(LayerRef(str(val), src, None, "own", own=True))
                continue
            text = _str(val)
            if isinstance(text, Unknown):
                out.append(LayerRef(text, src))
                continue
            out.append(parse_layer_arn(text, src))
        return tuple(out)

    def _code_signing(self, props: Any) -> Sourced[str] | None:
        if "CodeSigningConfigArn" not in props:
            return None
        src = self.src(props, "CodeSigningConfigArn")
        val = self.ev.value(props["CodeSigningConfigArn"])
        if isinstance(val, ResourceRef) and val.logical_id in self.resources:
            res = self.resources[val.logical_id]
            cprops = res.get("Properties") if isinstance(res, dict) else None
            policies = cprops.get("CodeSigningPolicies") if isinstance(cprops, dict) else None
            mode = policies.get("UntrustedArtifactOnDeployment", "Warn") if isinstance(policies, dict) else "Warn"
            return Sourced(_str(self.ev.value(mode)), src)
        return Sourced(Unknown(f"code signing config {_str(val)}"), src)

    def _events(self, rid: str, props: Any) -> list[Trigger]:
        events = props.get("Events")
        if not isinstance(events, dict):
            return []
        out = []
        for name, event in events.items():
            if not isinstance(event, dict):
                continue
            kind = event.get("Type")
            eprops = event.get("Properties")
            eprops = eprops if isinstance(eprops, dict) else LMap()
            src = self.src(events, name)
            if kind in ("Api", "HttpApi"):
                out.append(self._api_event(str(name), str(kind), eprops, src))
            else:
                out.append(Trigger("event", src, "AWS", False, f"{kind} event {name}"))
        return out

    def _api_event(self, name: str, kind: str, eprops: Any, src: Src) -> Trigger:
        auth_block = eprops.get("Auth")
        authorizer: Any = None
        api_key = False
        if isinstance(auth_block, dict):
            authorizer = self.ev.value(auth_block.get("Authorizer"))
            api_key = self.ev.value(auth_block.get("ApiKeyRequired")) is True
            if "Authorizer" in auth_block:
                src = self.src(auth_block, "Authorizer")
        api_id_key = "RestApiId" if kind == "Api" else "ApiId"
        api_type = "AWS::Serverless::Api" if kind == "Api" else "AWS::Serverless::HttpApi"
        api_auth: Any = None
        if authorizer is None:
            api_props: Any = None
            if api_id_key in eprops:
                for aid in self.target_ids(eprops[api_id_key]):
                    res = self.resources.get(aid)
                    if isinstance(res, dict) and res.get("Type") == api_type:
                        api_props = res.get("Properties")
            if api_props is None:
                api_props = self.globals.get(kind)
            if isinstance(api_props, dict) and isinstance(api_props.get("Auth"), dict):
                api_auth = api_props["Auth"]
                authorizer = self.ev.value(api_auth.get("DefaultAuthorizer"))
                api_key = api_key or self.ev.value(api_auth.get("ApiKeyRequired")) is True
        trigger_kind = "rest-api" if kind == "Api" else "http-api"
        method = self.ev.value(eprops.get("Method", "any"))
        route = f"{str(method).upper()} {self.ev.value(eprops.get('Path', '/'))}"
        if authorizer is None or authorizer == "NONE":
            if api_key:
                return Trigger(trigger_kind, src, "API_KEY", False, f"{kind} event {name} ({route}), API key only")
            return Trigger(trigger_kind, src, "NONE", True, f"{kind} event {name} ({route}) without an authorizer")
        text = _str(authorizer)
        return Trigger(
            trigger_kind, src, text, False if isinstance(text, str) else None, f"{kind} event {name} ({route})"
        )


def _public_auth(auth: str | Unknown) -> bool | None:
    if isinstance(auth, Unknown):
        return None
    return auth.upper() == "NONE"


def parse_layer_arn(text: str, src: Src) -> LayerRef:
    """Account and version out of a layer ARN; a ``${AWS::AccountId}`` account is this account."""
    # ${AWS::Region} and friends hold colons: fold each placeholder into one colon-free token first
    flat = re.sub(r"\$\{([^}]*)\}", lambda m: "@" + m.group(1).replace(":", "_") + "@", text.strip())
    match = _LAYER_ARN.match(flat)
    if not match:
        return LayerRef(text, src)
    account, _, version = match.groups()
    own = "@" in account or "aws_caller_identity" in account
    return LayerRef(text, src, None if own else account, version, own=own)


def parse(doc: Any, path: str) -> Deployment:
    """Parse an already loaded template (see :mod:`sas.scan.iac.yamlsrc`)."""
    transform = doc.get("Transform") if isinstance(doc, dict) else None
    fmt = "sam" if "AWS::Serverless" in str(transform) else "cloudformation"
    return _Parser(doc, path, fmt).run()
