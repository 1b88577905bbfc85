"""HTTP API (v2) events as API Gateway sends them, headers included: the requests the runtime benchmarks replay.

Shared by ``runtime_overhead.py``, ``minimal_request_path.py`` and ``cache_lines.py`` (run as scripts, the
``benchmarks`` folder is on ``sys.path``). Each event is a JSON string, so that every call can parse a fresh
one, as the Lambda runtime client does with what it reads from the Runtime API.
"""

from __future__ import annotations

import json
from typing import Any


def http_api_v2_events(rows: Any, count: int = 500) -> list[str]:
    """One event per feature row (the first ``count``), body ``{"features": [...]}``, 250 client addresses."""
    return [
        json.dumps(
            {
                "version": "2.0",
                "routeKey": "POST /predict",
                "rawPath": "/predict",
                "rawQueryString": "",
                "headers": {
                    "accept": "application/json",
                    "content-length": "400",
                    "content-type": "application/json",
                    "host": "abc123.execute-api.us-east-1.amazonaws.com",
                    "user-agent": "python-requests/2.32",
                    "x-amzn-trace-id": f"Root=1-6740a1b2-{i:024x}",
                    "x-forwarded-for": f"198.51.100.{i % 250}",
                    "x-forwarded-port": "443",
                    "x-forwarded-proto": "https",
                },
                "requestContext": {
                    "accountId": "123456789012",
                    "apiId": "abc123",
                    "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
                    "http": {
                        "method": "POST",
                        "path": "/predict",
                        "protocol": "HTTP/1.1",
                        "sourceIp": f"198.51.100.{i % 250}",
                    },
                    "requestId": str(i),
                    "stage": "$default",
                    "timeEpoch": 1_790_000_000_000 + i,
                },
                "body": json.dumps({"features": [float(v) for v in row]}),
                "isBase64Encoded": False,
            }
        )
        for i, row in enumerate(rows[:count])
    ]
