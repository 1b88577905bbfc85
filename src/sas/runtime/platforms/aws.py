"""AWS Lambda adapter: Lambda events <-> RequestContext, and blocked answers in Lambda's own shapes.

Recognised events: API Gateway REST (v1 proxy), HTTP API (v2 payload), Function URLs (v2 payload with a
``*.lambda-url.*`` domain), Application Load Balancer target events, and direct invocations (any other
JSON). A blocked HTTP request gets ``{"statusCode", "headers", "body", "isBase64Encoded"}`` (plus
``statusDescription`` and ``multiValueHeaders`` when the ALB asks for them); a blocked direct invocation
gets ``{"statusCode", "error", "request_id"}`` as the function's result, rather than a raised error whose
stack trace Lambda would hand to the caller.

Powertools for AWS Lambda is optional and never imported here unless the function already loaded it:
then alerts also go through its ``Logger`` (structured, with the request's correlation), and
``shield.aws_powertools`` gives the same wrapper as ``lambda_handler_decorator`` middleware.
"""

from __future__ import annotations

import base64
import functools
import json
import sys
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sas.events.record import RuntimeEvent
from sas.runtime.context import Headers, RequestContext
from sas.runtime.platforms.identity import IP_PREFIX, client_identity, client_ip

if TYPE_CHECKING:
    from sas.runtime.shield import Shield

F = TypeVar("F", bound=Callable[..., Any])

_REASONS = {400: "Bad Request", 403: "Forbidden", 413: "Payload Too Large", 429: "Too Many Requests"}


def event_kind(event: Any) -> str:
    if not isinstance(event, dict):
        return "direct"
    rc = event.get("requestContext")
    if isinstance(rc, dict):
        if "elb" in rc:
            return "alb"
        if event.get("version") == "2.0" and isinstance(rc.get("http"), dict):
            return "function-url" if ".lambda-url." in str(rc.get("domainName", "")) else "http-api"
        if "httpMethod" in event:
            return "rest-api"
    return "direct"


def _body(event: dict[str, Any]) -> bytes:
    raw = event.get("body")
    if raw is None:
        return b""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(raw)
        except (ValueError, TypeError):  # not base64 after all (a lone surrogate is kept as the bytes it stands for)
            return str(raw).encode("utf-8", "surrogatepass")
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")
    try:  # a direct invocation may send any JSON value as the body
        return json.dumps(raw).encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, RecursionError):
        return str(raw).encode("utf-8", "surrogatepass")


def _get(mapping: Any, *path: str) -> str:
    node = mapping
    for key in path:
        if not isinstance(node, dict):
            return ""
        node = node.get(key)
    return str(node) if node not in (None, "") else ""


def _str(value: Any) -> str:
    return str(value) if value not in (None, "") else ""


def _peer_ip(peer: str, headers: Headers, proxies: tuple[Any, ...]) -> str:
    # without trusted proxies, an address with no port and no brackets is itself, stripped: what client_ip
    # would return, without the call (the HTTP API path does the same inline)
    if not proxies and ":" not in peer and "[" not in peer:
        return peer.strip()
    return client_ip(peer, headers.get("x-forwarded-for", "") if proxies else "", proxies)


def _principal(rc: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> str:
    # most requests carry no authorizer: one dict lookup decides
    if not isinstance(rc.get("authorizer"), dict) and not isinstance(rc.get("identity"), dict):
        return ""
    for path in paths:
        value = _get(rc, *path)
        if value:
            return value
    return ""


_V2_PRINCIPAL = (
    ("authorizer", "jwt", "claims", "sub"),
    ("authorizer", "lambda", "principalId"),
    ("authorizer", "iam", "userArn"),
)
_V1_PRINCIPAL = (
    ("authorizer", "claims", "sub"),
    ("authorizer", "principalId"),
    ("identity", "userArn"),
    ("identity", "cognitoIdentityId"),
)


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})  # as API Gateway sends them
# A function is reached through one or two domain names: whether each is a Function URL is looked up once.
_KIND_OF_DOMAIN: dict[Any, str] = {}


def _v2_kind(domain: Any) -> str:
    kind = _KIND_OF_DOMAIN.get(domain) if type(domain) is str else None
    if kind is None:
        kind = "function-url" if ".lambda-url." in str(domain or "") else "http-api"
        if type(domain) is str and len(_KIND_OF_DOMAIN) < 64:
            _KIND_OF_DOMAIN[domain] = kind
    return kind


def build_context(shield: Shield, event: Any, context: Any) -> RequestContext:
    policy = shield.policy
    request_id = str(getattr(context, "aws_request_id", "") or "")
    function = shield.function or str(getattr(context, "function_name", "") or "")
    instance = shield.current_instance()
    rc = event.get("requestContext") if type(event) is dict else None
    if type(rc) is dict and "elb" not in rc and event.get("version") == "2.0" and type(rc.get("http")) is dict:
        # HTTP API and Function URLs (payload 2.0): nearly every request of an inference API, so done inline
        http = rc["http"]
        raw = event.get("body")
        if type(raw) is str and not event.get("isBase64Encoded"):
            try:
                body = raw.encode()  # no arguments: the codec lookup is skipped
            except UnicodeEncodeError:  # a lone surrogate, kept as the bytes it stands for
                body = raw.encode("utf-8", "surrogatepass")
        else:
            body = _body(event)
        peer = http.get("sourceIp")
        proxies = policy.trusted_proxies
        headers = Headers(event.get("headers"))
        if type(peer) is str and not proxies and ":" not in peer and "[" not in peer:
            ip = peer.strip()  # what client_ip makes of an address without port or brackets
        else:
            ip = _peer_ip(_str(peer), headers, proxies)
        principal = _principal(rc, _V2_PRINCIPAL) if "authorizer" in rc else ""
        if principal or "source_ip" not in policy.identity_order:
            client, source = client_identity(policy, principal=principal, source_ip=ip)
        else:  # the common case, without a call: only the address is known, and the order accepts it
            client, source = (IP_PREFIX + ip, "source_ip") if ip else ("anonymous", "")
        path = event.get("rawPath") or http.get("path")
        method = http.get("method")
        if type(method) is not str or method not in _METHODS:
            method = _str(method).upper()
        # positional: a class called with keywords packs them into a dictionary and unpacks it again
        return RequestContext(
            request_id or _get(rc, "requestId") or uuid.uuid4().hex,  # request_id
            client,  # client_id
            "aws",  # platform
            function,
            instance,  # instance_id
            body,
            None,  # payload
            len(body),  # size
            source,  # client_source
            ip,  # source_ip
            method,
            path if type(path) is str else _str(path),
            _v2_kind(rc.get("domainName")),  # kind
            headers,
        )
    kind = event_kind(event)
    if kind == "direct":
        try:
            size = len(json.dumps(event, separators=(",", ":"), default=str))
        except (TypeError, ValueError, RecursionError):
            size = 0
        client, source = client_identity(policy)
        return RequestContext(
            request_id=request_id or uuid.uuid4().hex,
            client_id=client,
            client_source=source,
            platform="aws",
            function=function,
            instance_id=instance,
            payload=event,
            size=size,
            kind=kind,
        )
    rc = event.get("requestContext") or {}
    raw_headers = event.get("headers")
    if not raw_headers and isinstance(event.get("multiValueHeaders"), dict):
        # the last value of each list, as API Gateway and the ALB do; a direct invocation may send anything
        raw_headers = {k: v[-1] for k, v in event["multiValueHeaders"].items() if type(v) is list and v}
    # lower-cased on first use: no detector of ours reads headers, and X-Forwarded-For matters only behind
    # a trusted proxy (or an ALB, which appends the client's address to it)
    headers = Headers(raw_headers)
    body = _body(event)
    proxies = policy.trusted_proxies
    if kind == "rest-api":
        method = str(event.get("httpMethod", ""))
        path = str(event.get("path", ""))
        peer = _get(rc, "identity", "sourceIp")
        principal = _principal(rc, _V1_PRINCIPAL)
        api_key = _get(rc, "identity", "apiKeyId")
        ip = _peer_ip(peer, headers, proxies)
    else:  # alb: the balancer is the peer and appends the address it saw
        method = str(event.get("httpMethod", ""))
        path = str(event.get("path", ""))
        principal, api_key = "", ""
        ip = client_ip("", headers.get("x-forwarded-for", ""), proxies, platform_appends=True)
    client, source = client_identity(policy, principal=principal, api_key=api_key, source_ip=ip)
    return RequestContext(
        request_id=request_id or _get(rc, "requestId") or uuid.uuid4().hex,
        client_id=client,
        client_source=source,
        source_ip=ip,
        platform="aws",
        function=function,
        instance_id=instance,
        body=body,
        size=len(body),
        method=method.upper(),
        path=path,
        kind=kind,
        headers=headers,
    )


def blocked_response(event: Any, kind: str, status: int, body: Mapping[str, str]) -> dict[str, Any]:
    if kind == "direct":
        return {"statusCode": status, **body}
    response: dict[str, Any] = {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }
    if kind == "alb":
        response["statusDescription"] = f"{status} {_REASONS.get(status, 'Error')}"
        if isinstance(event, dict) and "multiValueHeaders" in event:
            response["multiValueHeaders"] = {"Content-Type": ["application/json"]}
            del response["headers"]
    return response


def _blocked(status: int, body: Mapping[str, str], event: Any, *_: Any) -> dict[str, Any]:
    return blocked_response(event, event_kind(event), status, body)


def _powertools_alert_hook(shield: Shield) -> Callable[[RuntimeEvent], None] | None:
    if "aws_lambda_powertools" not in sys.modules:
        return None
    try:
        from aws_lambda_powertools import Logger
    except ImportError:
        return None
    logger = Logger(service=shield.function or "sas")

    def log(event: RuntimeEvent) -> None:
        logger.warning(f"sas {event.verdict.value}: {event.event}", extra={"sas": event.to_dict()})

    return log


def wrap_handler(shield: Shield, handler: F) -> F:
    if not any(getattr(h, "__sas_powertools__", False) for h in shield.alert_hooks):
        hook = _powertools_alert_hook(shield)
        if hook is not None:
            hook.__sas_powertools__ = True  # type: ignore[attr-defined]
            shield.alert_hooks.append(hook)

    @functools.wraps(handler)
    def shielded(event: Any, context: Any = None, *args: Any, **kwargs: Any) -> Any:
        ctx = build_context(shield, event, context)
        if args or kwargs:
            return shield.run(ctx, handler, _blocked, event, context, *args, **kwargs)
        return shield.run(ctx, handler, _blocked, event, context)

    return shielded  # type: ignore[return-value]


def powertools_middleware(shield: Shield) -> Callable[..., Any]:
    """The Shield as Powertools middleware (``lambda_handler_decorator``), stackable with Powertools' own."""
    from aws_lambda_powertools.middleware_factory import lambda_handler_decorator

    @lambda_handler_decorator
    def sas_shield(handler: Callable[..., Any], event: Any, context: Any, **kwargs: Any) -> Any:
        return wrap_handler(shield, handler)(event, context)

    return sas_shield
