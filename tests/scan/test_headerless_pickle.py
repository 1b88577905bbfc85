"""Protocol 0/1 pickles carry no header: content sniffing must still find them, and never mistake text."""

from __future__ import annotations

import pickle
import sysconfig
from pathlib import Path

import pytest

from sas.scan.engine import scan
from sas.scan.magic import Kind, sniff

EVASIVE = {
    # opens with an innocuous opcode instead of the usual (, ], } or c
    "int_then_global": b"I1\n0cos\nsystem\n(S'id'\ntR.",
    "binint1_then_global": b"K\x010cos\nsystem\n(S'id'\ntR.",
    # 800 bytes of harmless opcodes push the payload past the 512-byte sniffing window
    "padded_past_head": b"I1\n0" * 200 + b"cos\nsystem\n(S'id'\ntR.",
}


@pytest.mark.parametrize("name", sorted(EVASIVE))
def test_headerless_pickle_opening_with_any_opcode_is_sniffed(name: str) -> None:
    assert sniff(EVASIVE[name][:512]) is Kind.PICKLE


@pytest.mark.parametrize("name", sorted(EVASIVE))
def test_headerless_pickle_payload_is_caught_under_any_name(name: str, tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(EVASIVE[name])
    result = scan(tmp_path)
    assert any(f.severity.value == "critical" and f.category.value == "model" for f in result.findings), [
        (f.rule_id, f.message) for f in result.findings
    ]


@pytest.mark.parametrize("protocol", [0, 1])
@pytest.mark.parametrize("obj", [{"a": 1}, [1, 2], (1, "x"), {1, 2}, [list(range(300))], Path])
def test_ordinary_old_protocol_pickles_are_sniffed(protocol: int, obj: object) -> None:
    assert sniff(pickle.dumps(obj, protocol=protocol)[:512]) is Kind.PICKLE


@pytest.mark.parametrize(
    "text",
    [
        b"certifi\n",
        b"cli\nhcl2\n",
        b"import os\nprint(1)\n",
        b"from x import y\n",
        b"(draft) notes\n",
        b"class DistutilsError(Exception): ...\n" * 20,
        b"CacheControl==0.14.4\ndistlib==0.4.4\n" * 20,
    ],
)
def test_text_is_never_a_pickle_top_level_txt_regression(text: bytes) -> None:
    assert sniff(text[:512]) is not Kind.PICKLE


def test_no_text_file_in_site_packages_sniffs_as_headerless_pickle() -> None:
    root = Path(sysconfig.get_paths()["purelib"])
    hits = []
    for path in sorted(root.glob("*/*.txt"))[:3000] + sorted(root.glob("*.dist-info/*"))[:3000]:
        if not path.is_file():
            continue
        head = path.read_bytes()[:512]
        if not head.startswith(b"\x80") and sniff(head) is Kind.PICKLE:
            hits.append(str(path))
    assert hits == []


def test_old_joblib_zfile_is_a_pickle_not_a_name_mismatch(tmp_path: Path) -> None:
    import os
    import zlib

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, ("id",))

    payload = pickle.dumps(Payload(), protocol=2)
    body = zlib.compress(payload)
    (tmp_path / "model.pkl").write_bytes(b"ZF" + f"{len(payload):#x}".ljust(19).encode() + body)
    result = scan(tmp_path)
    rules = {f.rule_id for f in result.findings}
    assert "SAS-SCAN-003" not in rules
    assert any(f.severity.value == "critical" for f in result.findings), rules
