"""Client identity, the same way on every platform: the strongest source available wins.

Sources, in the default order of ``[runtime.identity] order``:

1. ``principal``: an identity the platform verified before the function ran (an API Gateway authorizer's
   ``principalId``, a JWT authorizer's ``sub`` claim, a Cognito ``sub``, an IAM caller ARN; Azure
   EasyAuth's ``X-MS-CLIENT-PRINCIPAL-ID`` and GCP API Gateway's ``X-Apigateway-Api-Userinfo`` only with
   ``trust_identity_headers = true``, because without the gateway in front anyone can send those headers).
   A bearer token the platform did not verify is never used: its ``sub`` is whatever the caller wrote;
2. ``api_key``: the API Gateway API key id (the id, never the key);
3. ``source_ip``: the peer address, or, when the peer is a trusted proxy, the right-most address of
   ``X-Forwarded-For`` that is not itself a trusted proxy (entries further left were written by the client
   and prove nothing).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from sas.runtime.policy import RuntimePolicy

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _strip_port(entry: str) -> str:
    entry = entry.strip()
    if entry.startswith("["):  # [v6]:port
        return entry[1:].split("]", 1)[0]
    if entry.count(":") == 1:  # v4:port (Azure's front end appends the client port)
        return entry.split(":", 1)[0]
    return entry


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_ip(peer: str, forwarded_for: str, proxies: Sequence[Network], *, platform_appends: bool = False) -> str:
    """The client's address.

    ``platform_appends``: the peer is the platform's own front end, which appended the address it saw to
    ``X-Forwarded-For`` (Azure, Google Front End, ALB); the right-most entry is then trusted like a peer.
    """
    hops = [_strip_port(h) for h in forwarded_for.split(",") if h.strip()] if forwarded_for else []
    if platform_appends and hops:
        peer = hops.pop()
    peer = _strip_port(peer) if peer else ""
    while peer and hops and _trusted(peer, proxies):
        peer = hops.pop()
    return peer


IP_PREFIX = "ip:"
_PREFIXES = {"principal": "principal:", "api_key": "api_key:", "source_ip": IP_PREFIX}


def client_identity(
    policy: RuntimePolicy, *, principal: str = "", api_key: str = "", source_ip: str = ""
) -> tuple[str, str]:
    """(client_id, source) following the configured order; ``("anonymous", "")`` when nothing is known."""
    for source in policy.identity_order:
        value = principal if source == "principal" else api_key if source == "api_key" else source_ip
        if value:
            return _PREFIXES[source] + value, source
    return "anonymous", ""
