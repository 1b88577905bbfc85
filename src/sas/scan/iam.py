"""IAM reasoning on the deployment model: what a function's role can really do, and what that makes possible.

Every policy a role has (inline, managed, SAM policy templates, separately attached policies) is combined
into one set of grants before any judgement, so a privilege-escalation path split across two policies is
found like one written in a single statement. Wildcards and ``NotAction`` are expanded against AWS's action
table (:mod:`sas.scan.iac.actiondb`, loaded only when needed); ``NotResource`` counts as "every other
resource"; ``Deny`` statements without conditions remove what they cover; conditions never make a grant
disappear, they lower the severity and are shown in the evidence.

The escalation catalogue is Rhino Security Labs' AWS IAM privilege-escalation methods (the Lambda ones
and the IAM ones a function role can use directly) and DataDog pathfinding.cloud's lambda-001..006, plus
a few later Lambda paths (layers through UpdateFunctionConfiguration, event-source mappings, AddPermission).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from sas.scan.iac.actiondb import table
from sas.scan.iac.model import RoleSpec, Statement
from sas.scan.iac.rules import (
    ADMIN,
    BROAD_WRITE,
    ESCALATION,
    EXFILTRATION,
    SERVICE_WIDE,
    UNRESOLVED_POLICY,
)
from sas.taxonomy import Severity


@dataclass(frozen=True, slots=True)
class Grant:
    """One (action, resource) an Allow statement gives; ``statement`` says where it was written."""

    action: str  # lower-case "svc:action"
    resource: str
    conditional: bool
    statement: Statement


@dataclass(frozen=True, slots=True)
class EscalationPath:
    id: str
    name: str
    needs: tuple[str, ...]  # each element: one action, or "a|b" for alternatives
    why: str


ESCALATION_PATHS: tuple[EscalationPath, ...] = (
    EscalationPath(
        "lambda-001",
        "PassRole + CreateFunction + InvokeFunction",
        ("iam:passrole", "lambda:createfunction", "lambda:invokefunction|lambda:invokefunctionurl"),
        "create a function with a more privileged role and invoke it (Rhino #15, pathfinding lambda-001)",
    ),
    EscalationPath(
        "lambda-002",
        "PassRole + CreateFunction + CreateEventSourceMapping",
        ("iam:passrole", "lambda:createfunction", "lambda:createeventsourcemapping"),
        "create a function with a more privileged role and trigger it from a stream or queue (Rhino #16)",
    ),
    EscalationPath(
        "lambda-003",
        "UpdateFunctionCode",
        ("lambda:updatefunctioncode",),
        "replace the code of an existing function and run as its role (Rhino #17, pathfinding lambda-003)",
    ),
    EscalationPath(
        "lambda-004",
        "UpdateFunctionCode + InvokeFunction",
        ("lambda:updatefunctioncode", "lambda:invokefunction"),
        "replace an existing function's code and invoke it at will (pathfinding lambda-004)",
    ),
    EscalationPath(
        "lambda-005",
        "UpdateFunctionCode + AddPermission",
        ("lambda:updatefunctioncode", "lambda:addpermission"),
        "replace an existing function's code and let any principal invoke it (pathfinding lambda-005)",
    ),
    EscalationPath(
        "lambda-006",
        "PassRole + CreateFunction + AddPermission",
        ("iam:passrole", "lambda:createfunction", "lambda:addpermission"),
        "create a function with a privileged role and open it to outside invocation (pathfinding lambda-006)",
    ),
    EscalationPath(
        "lambda-layers",
        "UpdateFunctionConfiguration (layers)",
        ("lambda:updatefunctionconfiguration", "lambda:publishlayerversion|lambda:getlayerversion"),
        "attach a layer with attacker code to an existing function, which runs it as the function's role",
    ),
    EscalationPath(
        "lambda-config-role",
        "PassRole + UpdateFunctionConfiguration",
        ("iam:passrole", "lambda:updatefunctionconfiguration"),
        "swap a more privileged role onto a function whose code the attacker controls",
    ),
    EscalationPath(
        "iam-create-policy-version",
        "CreatePolicyVersion",
        ("iam:createpolicyversion",),
        "write a new default version of a managed policy attached to the role (Rhino #1)",
    ),
    EscalationPath(
        "iam-set-default-policy-version",
        "SetDefaultPolicyVersion",
        ("iam:setdefaultpolicyversion",),
        "switch a managed policy to an older, broader version (Rhino #2)",
    ),
    EscalationPath(
        "iam-create-access-key",
        "CreateAccessKey",
        ("iam:createaccesskey",),
        "mint long-lived access keys for another (administrator) user (Rhino #4)",
    ),
    EscalationPath(
        "iam-login-profile",
        "CreateLoginProfile / UpdateLoginProfile",
        ("iam:createloginprofile|iam:updateloginprofile",),
        "set a console password for a privileged user (Rhino #5, #6)",
    ),
    EscalationPath(
        "iam-attach-policy",
        "Attach*Policy",
        ("iam:attachrolepolicy|iam:attachuserpolicy|iam:attachgrouppolicy",),
        "attach AdministratorAccess to its own role, a user or a group (Rhino #7-9)",
    ),
    EscalationPath(
        "iam-put-policy",
        "Put*Policy",
        ("iam:putrolepolicy|iam:putuserpolicy|iam:putgrouppolicy",),
        "write an inline admin policy onto its own role, a user or a group (Rhino #10-12)",
    ),
    EscalationPath(
        "iam-add-user-to-group",
        "AddUserToGroup",
        ("iam:addusertogroup",),
        "join a group with more privileges (Rhino #13)",
    ),
    EscalationPath(
        "iam-update-assume-role-policy",
        "UpdateAssumeRolePolicy + AssumeRole",
        ("iam:updateassumerolepolicy", "sts:assumerole"),
        "rewrite a privileged role's trust policy to trust itself, then assume it (Rhino #14)",
    ),
    EscalationPath(
        "sts-assume-any-role",
        "AssumeRole on every role",
        ("sts:assumerole",),
        "assume any role whose trust policy allows the account, including administrator roles",
    ),
    EscalationPath(
        "iam-permissions-boundary",
        "Delete/Put permissions boundary",
        ("iam:deleterolepermissionsboundary|iam:putrolepermissionsboundary",),
        "remove or widen the boundary that caps its own role",
    ),
    EscalationPath(
        "cloudformation-001",
        "PassRole + CreateStack",
        ("iam:passrole", "cloudformation:createstack"),
        "deploy a stack that runs with a more privileged service role (Rhino #20)",
    ),
    EscalationPath(
        "ec2-001",
        "PassRole + RunInstances",
        ("iam:passrole", "ec2:runinstances"),
        "start an instance with a privileged instance profile and read its credentials (Rhino #3)",
    ),
    EscalationPath(
        "glue-001",
        "PassRole + CreateDevEndpoint / UpdateDevEndpoint",
        ("iam:passrole", "glue:createdevendpoint|glue:updatedevendpoint"),
        "run a Glue endpoint with a privileged role (Rhino #18, #19)",
    ),
    EscalationPath(
        "sagemaker-001",
        "PassRole + CreateNotebookInstance / CreateTrainingJob / CreateProcessingJob",
        (
            "iam:passrole",
            "sagemaker:createnotebookinstance|sagemaker:createtrainingjob|sagemaker:createprocessingjob",
        ),
        "run SageMaker code with a privileged role",
    ),
    EscalationPath(
        "codebuild-001",
        "PassRole + CreateProject + StartBuild",
        ("iam:passrole", "codebuild:createproject", "codebuild:startbuild|codebuild:startbuildbatch"),
        "run a build with a privileged service role",
    ),
    EscalationPath(
        "datapipeline-001",
        "PassRole + CreatePipeline + PutPipelineDefinition",
        ("iam:passrole", "datapipeline:createpipeline", "datapipeline:putpipelinedefinition"),
        "run a pipeline with a privileged role (Rhino #21)",
    ),
    EscalationPath(
        "ssm-002",
        "SendCommand",
        ("ssm:sendcommand",),
        "run commands on instances and act as their instance roles",
    ),
)

# Actions that read data of a whole kind; on '*' they are account-wide exfiltration reach.
EXFIL_ACTIONS = (
    "s3:getobject",
    "secretsmanager:getsecretvalue",
    "ssm:getparameter",
    "ssm:getparameters",
    "ssm:getparametersbypath",
    "kms:decrypt",
    "dynamodb:scan",
    "dynamodb:getitem",
    "dynamodb:query",
    "sagemaker:invokeendpoint",
)

# Resource ids that cover a whole type: "*", "*/*", "role/*", "function:*", "table/*".
_PLACEHOLDER = re.compile(r"\$\{[^}]*\}")
_BROAD_RESOURCE = re.compile(r"^(\*|\*/\*|[a-z][a-z-]*[/:]\*)$")

# Write actions every Lambda role legitimately has on '*' (logging, tracing, metrics, VPC interfaces);
# AWSLambdaBasicExecutionRole and AWSLambdaVPCAccessExecutionRole grant them, so they are not findings.
BENIGN_BROAD = frozenset(
    {
        "logs:createloggroup",
        "logs:createlogstream",
        "logs:putlogevents",
        "xray:puttracesegments",
        "xray:puttelemetryrecords",
        "cloudwatch:putmetricdata",
        "ec2:createnetworkinterface",
        "ec2:deletenetworkinterface",
        "ec2:assignprivateipaddresses",
        "ec2:unassignprivateipaddresses",
    }
)


def is_broad(resource: str) -> bool:
    """True when a resource pattern covers every resource of its type (``*``, ``arn:aws:s3:::*``, ``role/*``).

    An S3 ARN names buckets directly, so ``arn:aws:s3:::bucket/*`` is scoped and only ``*``/``*/*`` is broad.
    """
    res = _PLACEHOLDER.sub("x", resource.strip())  # ${AWS::Region} and friends hold colons
    if res == "*":
        return True
    parts = res.split(":", 5)
    if len(parts) < 6 or not parts[0].startswith("arn"):
        return False
    if parts[2] == "s3":
        return parts[5] in ("*", "*/*")
    return _BROAD_RESOURCE.match(parts[5]) is not None


def _needs_expansion(pattern: str) -> bool:
    return "*" in pattern or "?" in pattern


def expand_actions(patterns: Iterable[str]) -> set[str]:
    """Lower-case action keys a list of patterns allows. Literal actions skip the table (no load)."""
    out: set[str] = set()
    for pat in patterns:
        if _needs_expansion(pat):
            out.update(table().expand(pat))
        elif ":" in pat:
            out.add(pat.strip().lower())
    return out


@dataclass
class Permissions:
    """The combined effect of every statement of one role.

    ``grants`` holds expanded actions; statements allowing every action (``*``) or everything except a
    list (``NotAction``) stay in ``wide`` unexpanded, so an administrator role costs one entry, not 20 000.
    Deny statements without conditions are kept in ``denies`` and applied on every lookup.
    """

    grants: dict[str, list[Grant]]
    wide: list[tuple[frozenset[str] | None, Grant]]
    denies: list[tuple[frozenset[str] | None, frozenset[str], tuple[str, ...]]]
    statements: tuple[Statement, ...]
    unresolved: tuple[str, ...]

    def allowed(self, action: str, *, broad_only: bool = False) -> list[Grant]:
        found = list(self.grants.get(action, []))
        for excluded, grant in self.wide:
            if excluded is None or action not in excluded:
                found.append(Grant(action, grant.resource, grant.conditional, grant.statement))
        found = [g for g in found if not self._denied(action, g.resource)]
        return [g for g in found if is_broad(g.resource)] if broad_only else found

    def _denied(self, action: str, resource: str) -> bool:
        for actions, not_actions, resources in self.denies:
            covers = action in actions if actions is not None else action not in not_actions
            if covers and _deny_covers(resources, resource):
                return True
        return False

    def actions(self) -> set[str]:
        """Every action with some grant (expands ``wide`` entries against the action table)."""
        out = set(self.grants)
        for excluded, _ in self.wide:
            out.update(a for a in table().actions if excluded is None or a not in excluded)
        return out


def combine(role: RoleSpec) -> Permissions:
    """Combine every statement of ``role`` into one set of grants."""
    grants: dict[str, list[Grant]] = {}
    wide: list[tuple[frozenset[str] | None, Grant]] = []
    denies: list[tuple[frozenset[str] | None, frozenset[str], tuple[str, ...]]] = []
    unresolved: list[str] = [f"{p.value}" for p in role.managed_policies if not p.known]
    if role.external:
        unresolved.append(f"role {role.name} is defined outside this template")
    for st in role.statements:
        if st.unresolved:
            unresolved.append(st.origin or "statement")
        if st.effect == "Deny":
            if not st.conditions:  # a conditional Deny may not apply: it never removes a grant
                acts = frozenset(expand_actions(st.actions)) if st.actions else None
                denies.append((acts, frozenset(expand_actions(st.not_actions)), st.resources or ("*",)))
            continue
        resources = st.resources or (("*",) if st.not_resources else ())
        if any(a.strip() in ("*", "*:*") for a in st.actions) or (not st.actions and st.not_actions):
            excluded = None if st.actions else frozenset(expand_actions(st.not_actions))
            wide.extend((excluded, Grant("*", res, bool(st.conditions), st)) for res in resources)
            continue
        for action in expand_actions(st.actions):
            bucket = grants.setdefault(action, [])
            for res in resources:
                bucket.append(Grant(action, res, bool(st.conditions), st))
    return Permissions(grants, wide, denies, role.statements, tuple(unresolved))


def _deny_covers(deny_resources: tuple[str, ...], resource: str) -> bool:
    from fnmatch import fnmatchcase

    return any(d == "*" or fnmatchcase(resource, d) for d in deny_resources)


@dataclass(frozen=True, slots=True)
class IamJudgement:
    """What :func:`judge` concluded about one role, for findings and for the public × privileged rule."""

    rule_id: str
    severity: Severity
    message: str
    evidence: str
    line_src: Statement | None  # the statement to point at, when there is one


def _where(grants: list[Grant]) -> str:
    g = grants[0]
    where = g.statement.origin or "policy"
    line = f":{g.statement.src.line}" if g.statement.src.line else ""
    return f"{where}{line}"


def judge(role: RoleSpec) -> tuple[list[IamJudgement], Permissions]:
    """Judge one role. Returns judgements (worst first) and the combined permissions."""
    perms = combine(role)
    out: list[IamJudgement] = []
    admin_stmt = _admin_statement(perms)
    if admin_stmt is not None:
        out.append(
            IamJudgement(
                ADMIN.id,
                Severity.HIGH if not admin_stmt.conditions else Severity.MEDIUM,
                f"role {role.name} allows every action on every resource ({admin_stmt.origin or 'policy'})",
                _statement_text(admin_stmt),
                admin_stmt,
            )
        )
    else:
        out.extend(_service_wide(role, perms))
        out.extend(_broad_write(role, perms))
        out.extend(_escalations(role, perms))
        out.extend(_exfiltration(role, perms))
    if perms.unresolved:
        out.append(
            IamJudgement(
                UNRESOLVED_POLICY.id,
                Severity.INFO,
                f"role {role.name}: not judged: " + "; ".join(sorted(set(perms.unresolved)))[:300],
                ";".join(sorted(set(perms.unresolved)))[:200],
                None,
            )
        )
    if role.boundary is not None and out:
        # a boundary caps what the role can do, but its content is elsewhere: say so, judge what is written
        note = f" (a permissions boundary is attached: {role.boundary.value}; it may cap this)"
        out = [IamJudgement(j.rule_id, j.severity, j.message + note, j.evidence, j.line_src) for j in out]
    out.sort(key=lambda j: -j.severity.rank)
    return out, perms


def _statement_text(st: Statement) -> str:
    acts = ",".join(st.actions) if st.actions else "NotAction:" + ",".join(st.not_actions)
    res = ",".join(st.resources) if st.resources else "NotResource:" + ",".join(st.not_resources)
    cond = f" if {st.conditions}" if st.conditions else ""
    return f"{st.effect} {acts} on {res}{cond}"[:300]


def _admin_statement(perms: Permissions) -> Statement | None:
    """An Allow that gives (almost) everything on '*': Action '*', or NotAction excluding few services."""
    total = None
    for st in perms.statements:
        if st.effect != "Allow" or not any(is_broad(r) for r in st.resources or ("*",)):
            continue
        star = any(a.strip() in ("*", "*:*") for a in st.actions)
        if star and (_survives_denies(perms, "iam:putrolepolicy") or _survives_denies(perms, "s3:getobject")):
            return st
        if not st.actions and st.not_actions:
            total = total or len(table().actions)
            excluded = expand_actions(st.not_actions)
            if len(excluded) < total * 0.2:
                return st
    return None


def _survives_denies(perms: Permissions, action: str) -> bool:
    return bool(perms.allowed(action))


def _service_wide(role: RoleSpec, perms: Permissions) -> list[IamJudgement]:
    out = []
    for st in perms.statements:
        if st.effect != "Allow":
            continue
        for act in st.actions:
            svc, _, name = act.strip().partition(":")
            if name != "*" or svc == "*":
                continue
            broad = any(is_broad(r) for r in st.resources or ("*",))
            severity = Severity.HIGH if broad and not st.conditions else Severity.MEDIUM
            if svc.lower() in ("logs", "xray", "cloudwatch") and severity == Severity.HIGH:
                severity = Severity.MEDIUM
            out.append(
                IamJudgement(
                    SERVICE_WIDE.id,
                    severity,
                    f"role {role.name} allows every {svc} action on "
                    f"{'every resource' if broad else ', '.join(st.resources)} ({st.origin or 'policy'})",
                    _statement_text(st),
                    st,
                )
            )
    return out


def _broad_write(role: RoleSpec, perms: Permissions) -> list[IamJudgement]:
    tbl = None
    perms_mgmt: dict[str, list[Grant]] = {}
    write: dict[str, list[Grant]] = {}
    for action in perms.actions():
        broad = [g for g in perms.allowed(action) if is_broad(g.resource) and not g.conditional]
        if not broad or action in BENIGN_BROAD:
            continue
        tbl = tbl or table()
        level = tbl.level(action)
        if level == "Permissions management":
            perms_mgmt[action] = broad
        elif level == "Write":
            write[action] = broad
    out = []
    for found, severity, label in (
        (perms_mgmt, Severity.HIGH, "permissions-management"),
        (write, Severity.MEDIUM, "write"),
    ):
        if not found:
            continue
        names = sorted(table().canonical(a) for a in found)
        first = next(iter(found.values()))
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        out.append(
            IamJudgement(
                BROAD_WRITE.id,
                severity,
                f"role {role.name} can perform {len(names)} {label} action(s) on every resource: {shown}",
                f"{label}: {','.join(names[:20])}",
                first[0].statement,
            )
        )
    return out


def _escalations(role: RoleSpec, perms: Permissions) -> list[IamJudgement]:
    out = []
    for path in ESCALATION_PATHS:
        used: list[Grant] = []
        scoped = False
        for need in path.needs:
            options = need.split("|")
            hits = [g for opt in options for g in perms.allowed(opt)]
            if not hits:
                break
            broad_hits = [g for g in hits if is_broad(g.resource)]
            # PassRole and AssumeRole only escalate when they reach roles the function does not already own.
            if not broad_hits and need.startswith(("iam:passrole", "sts:assumerole")):
                break
            chosen = broad_hits or hits
            scoped = scoped or not broad_hits or all(g.conditional for g in chosen)
            used.append(chosen[0])
        else:
            origins = sorted({_where([g]) for g in used})
            split = len({g.statement.origin for g in used}) > 1
            severity = Severity.MEDIUM if scoped else Severity.HIGH
            actions = " + ".join(table().canonical(g.action) for g in used)
            out.append(
                IamJudgement(
                    ESCALATION.id,
                    severity,
                    f"role {role.name} can escalate via {path.id} ({path.name}): {path.why}"
                    + (" — the permissions come from different policies" if split else "")
                    + (" (scoped or conditional, review)" if scoped else ""),
                    f"{path.id}: {actions} from {', '.join(origins)}",
                    used[0].statement,
                )
            )
    return out


def _exfiltration(role: RoleSpec, perms: Permissions) -> list[IamJudgement]:
    hits = []
    first: Grant | None = None
    for action in EXFIL_ACTIONS:
        broad = [g for g in perms.allowed(action, broad_only=True) if not g.conditional]
        if broad:
            hits.append(action)
            first = first or broad[0]
    if not hits or first is None:
        return []
    return [
        IamJudgement(
            EXFILTRATION.id,
            Severity.MEDIUM,
            f"role {role.name} can read account-wide: {', '.join(hits)}",
            ",".join(hits),
            first.statement,
        )
    ]


PRIVILEGED_RULES = frozenset({ADMIN.id, ESCALATION.id, SERVICE_WIDE.id, BROAD_WRITE.id, EXFILTRATION.id})


def is_privileged(judgements: list[IamJudgement]) -> list[IamJudgement]:
    """The judgements that make a role 'privileged' for the public × privileged rule (high, or data reach)."""
    return [
        j
        for j in judgements
        if j.rule_id in PRIVILEGED_RULES and (j.severity >= Severity.HIGH or j.rule_id == EXFILTRATION.id)
    ]
