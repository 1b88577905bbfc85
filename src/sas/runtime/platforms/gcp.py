"""Google Cloud Functions adapter: the functions-framework Flask request (HTTP functions) and CloudEvents.

An HTTP function gets the Flask request and may return anything Flask accepts; a blocked request is answered
with the tuple ``(json_body, status, headers)``, which Flask turns into a response. A CloudEvent function
returns nothing: a blocked event is recorded and acknowledged (the handler does not run and the function
returns normally, so the platform does not redeliver it).

Nothing of Flask or functions-framework is imported here: the request object is duck-typed, so this module
costs nothing to import outside GCP. The body is read only when its declared length is within the size
limit, so an oversized request is refused (413) without being buffered.
"""

from __future__ import annotations

import base64
import functools
import json
import sys
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from sas.runtime.context import Headers, RequestContext, folds_case
from sas.runtime.platforms.identity import client_identity, client_ip

if TYPE_CHECKING:
    from sas.runtime.shield import Shield

F = TypeVar("F", bound=Callable[..., Any])


def is_cloud_event(obj: Any) -> bool:
    return hasattr(obj, "get_attributes") and hasattr(obj, "data")


def _principal(headers: Mapping[str, str]) -> str:
    info = headers.get("x-apigateway-api-userinfo", "")
    if info:
        try:
            claims = json.loads(base64.urlsafe_b64decode(info + "=" * (-len(info) % 4)))
            if isinstance(claims, dict) and claims.get("sub"):
                return str(claims["sub"])
        except (ValueError, TypeError):
            pass
    email = headers.get("x-goog-authenticated-user-email", "")
    return email.split(":", 1)[-1] if email else ""


def build_http_context(shield: Shield, request: Any) -> RequestContext:
    policy = shield.policy
    raw = request.headers
    # Werkzeug's header class finds a name whatever its case: the few headers read here are looked up in it,
    # and the lower-cased copy is made only if a detector asks for more
    headers = Headers(raw, folded=True) if folds_case(raw) else Headers(dict(raw.items()))
    declared = request.content_length
    if declared is not None and declared > policy.max_body_bytes:
        body, size = b"", int(declared)
    else:
        body = request.get_data(cache=True) or b""
        size = len(body)
    # On Cloud Functions/Run the peer is Google's front end, which appends the client to X-Forwarded-For.
    forwarded = headers.get("x-forwarded-for", "")
    behind_gfe = bool(shield.env.get("K_SERVICE")) and bool(forwarded)
    peer = "" if behind_gfe else str(request.remote_addr or "")
    ip = client_ip(peer, forwarded, policy.trusted_proxies, platform_appends=behind_gfe)
    principal = _principal(headers) if policy.trust_identity_headers else ""
    client, source = client_identity(policy, principal=principal, source_ip=ip)
    request_id = headers.get("function-execution-id") or headers.get("x-cloud-trace-context", "").split("/", 1)[0]
    # positional: a class called with keywords packs them into a dictionary and unpacks it again
    return RequestContext(
        request_id or uuid.uuid4().hex,
        client,  # client_id
        "gcp",  # platform
        shield.function,
        shield.current_instance(),  # instance_id
        body,
        None,  # payload
        size,
        source,  # client_source
        ip,  # source_ip
        str(request.method or "").upper(),  # method
        str(request.path or ""),  # path
        "http",  # kind
        headers,
    )


def build_event_context(shield: Shield, event: Any) -> RequestContext:
    data = event.data
    if isinstance(data, (bytes, bytearray)):
        size = len(data)
    else:
        try:
            size = len(json.dumps(data, default=str))
        except (TypeError, ValueError, RecursionError):
            size = 0
    attributes = event.get_attributes()
    source = str(attributes.get("source", ""))
    return RequestContext(
        request_id=str(attributes.get("id", "")) or uuid.uuid4().hex,
        client_id=f"event-source:{source}" if source else "anonymous",
        client_source="event_source" if source else "",
        platform="gcp",
        function=shield.function,
        instance_id=shield.current_instance(),
        payload=data,
        size=size,
        kind="cloudevent",
        path=str(attributes.get("type", "")),
    )


def _http_blocked(status: int, body: dict[str, str], *_: Any) -> Any:
    return (json.dumps(body), status, {"Content-Type": "application/json"})


def _event_blocked(status: int, body: dict[str, str], *_: Any) -> None:
    return None


def wrap_function(shield: Shield, fn: F) -> F:
    if not shield.function:
        shield.function = fn.__name__
    if "functions_framework" in sys.modules and not shield._closed:
        # the framework's gunicorn master imports the function, then forks the worker that serves it
        shield.defer_activation()

    @functools.wraps(fn)
    def shielded(request: Any, *args: Any, **kwargs: Any) -> Any:
        if is_cloud_event(request):
            ctx = build_event_context(shield, request)
            return shield.run(ctx, fn, _event_blocked, request, *args, **kwargs)
        ctx = build_http_context(shield, request)
        return shield.run(ctx, fn, _http_blocked, request, *args, **kwargs)

    return shielded  # type: ignore[return-value]
