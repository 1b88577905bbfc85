"""Azure Functions adapter: ``azure.functions.HttpRequest`` in, ``HttpResponse`` out (v1 and v2 models).

With the v2 programming model put the Shield's decorator *under* ``@app.route``: the worker indexes the
function through ``inspect.signature``, which follows the ``__wrapped__`` that :func:`functools.wraps` sets,
so binding names (``req``, ``context``) keep working. A plain decorator, not a worker extension: worker
extensions are unsupported from Python 3.13.

The request is found among the call's arguments by shape (``get_body``, ``method``, ``headers``), so this
module does not import ``azure.functions`` until it must build a blocked response (the worker has loaded it
by then). Other triggers (queue, timer...) get a payload-only context and a blocked one returns ``None``.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from sas.runtime.context import Headers, RequestContext, folds_case
from sas.runtime.platforms.identity import client_identity, client_ip

if TYPE_CHECKING:
    from sas.runtime.shield import Shield

F = TypeVar("F", bound=Callable[..., Any])


def _is_http_request(obj: Any) -> bool:
    return hasattr(obj, "get_body") and hasattr(obj, "method") and hasattr(obj, "headers")


def build_context(shield: Shield, request: Any, context: Any, function: str) -> RequestContext:
    policy = shield.policy
    raw = request.headers
    # Azure's header class finds a name whatever its case: the few headers read here are looked up in it, and
    # the lower-cased copy is made only if a detector asks for more
    headers = Headers(raw, folded=True) if folds_case(raw) else Headers(dict(raw))
    body = request.get_body() or b""
    # Azure's front end appends "client-ip:port" to X-Forwarded-For; the worker never sees the peer.
    ip = client_ip("", headers.get("x-forwarded-for", ""), policy.trusted_proxies, platform_appends=True)
    principal = headers.get("x-ms-client-principal-id", "") if policy.trust_identity_headers else ""
    client, source = client_identity(policy, principal=principal, source_ip=ip)
    invocation = str(getattr(context, "invocation_id", "") or "")
    try:
        path = str(request.url).split("?", 1)[0]
    except (AttributeError, TypeError):
        path = ""
    # positional: a class called with keywords packs them into a dictionary and unpacks it again
    return RequestContext(
        invocation or headers.get("x-ms-request-id", "") or uuid.uuid4().hex,  # request_id
        client,  # client_id
        "azure",  # platform
        function,
        shield.current_instance(),  # instance_id
        bytes(body),
        None,  # payload
        len(body),  # size
        source,  # client_source
        ip,  # source_ip
        str(request.method or "").upper(),  # method
        path,
        "http",  # kind
        headers,
    )


def _no_answer(status: int, body: dict[str, str], *_: Any) -> None:
    return None


def _http_blocked(status: int, body: dict[str, str], *_: Any) -> Any:
    import azure.functions as func

    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")


def wrap_function(shield: Shield, fn: F) -> F:
    function = shield.function or fn.__name__

    @functools.wraps(fn)
    def shielded(*args: Any, **kwargs: Any) -> Any:
        request = next((a for a in (*args, *kwargs.values()) if _is_http_request(a)), None)
        context = kwargs.get("context")
        if request is not None:
            ctx = build_context(shield, request, context, function)
            return shield.run(ctx, fn, _http_blocked, *args, **kwargs)
        payload = args[0] if args else next(iter(kwargs.values()), None)
        ctx = RequestContext(
            request_id=str(getattr(context, "invocation_id", "") or uuid.uuid4().hex),
            client_id="anonymous",
            platform="azure",
            function=function,
            instance_id=shield.current_instance(),
            payload=payload if isinstance(payload, (dict, list, str, int, float)) else None,
            kind="trigger",
        )
        return shield.run(ctx, fn, _no_answer, *args, **kwargs)

    return shielded  # type: ignore[return-value]
