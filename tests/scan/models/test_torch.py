"""PyTorch checkpoints: zip (any name, extension, top folder), TorchScript, legacy stream, embedded bytes."""

from __future__ import annotations

import functools
import io
import os
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from sas.scan.engine import scan
from sas.taxonomy import Severity

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class SmallNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.norm = torch.nn.BatchNorm1d(4)
        self.fc = torch.nn.Linear(4, 2)
        self.act = torch.nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.fc(self.norm(x)))


class Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, ("echo pwned",)


def _high(result) -> list:  # type: ignore[no-untyped-def]
    return [f for f in result.findings if f.severity >= Severity.HIGH]


def _rezip(data: bytes, rename_top: str | None = None, edit: dict[str, bytes] | None = None) -> bytes:
    """Rewrite a torch zip: another top-level folder name, or replaced member contents."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info)
            rel = info.filename.split("/", 1)[1]
            if edit and rel in edit:
                body = edit[rel]
            name = f"{rename_top}/{rel}" if rename_top else info.filename
            dst.writestr(name, body)
    return out.getvalue()


def _saved(obj: object, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, **kwargs)  # type: ignore[arg-type]
    return buf.getvalue()


def test_state_dict_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save(SmallNet().state_dict(), path)
    result = scan(path)
    assert result.findings == ()
    assert [c.format for c in result.components] == ["pytorch"]
    assert len(result.components[0].sha256) == 64


def test_full_module_save_is_medium_at_most(tmp_path: Path) -> None:
    path = tmp_path / "model.pth"
    torch.save(SmallNet(), path)
    result = scan(path)
    assert not _high(result)
    unknown = {f.evidence for f in result.findings}
    assert all(e.endswith("SmallNet") for e in unknown), unknown  # only the model's own class


def test_optimizer_checkpoint_is_clean(tmp_path: Path) -> None:
    net = SmallNet()
    opt = torch.optim.Adam(net.parameters())
    path = tmp_path / "ckpt.tar"
    torch.save({"model": net.state_dict(), "optim": opt.state_dict(), "epoch": 3}, path)
    assert scan(path).findings == ()


@pytest.mark.parametrize("name", ["weights.bin", "model", "checkpoint.ckpt", "x.safetensors.bak"])
def test_malicious_zip_with_any_name_and_top_folder(tmp_path: Path, name: str) -> None:
    data = _rezip(_saved({"w": torch.ones(3), "x": Payload()}), rename_top="unexpected_folder")
    (tmp_path / name).write_bytes(data)
    result = scan(tmp_path / name)
    assert result.worst() == Severity.CRITICAL
    assert any("unexpected_folder/data.pkl" in f.location.path for f in result.findings)


def test_malicious_extra_pickle_member(tmp_path: Path) -> None:
    data = _rezip(_saved(SmallNet().state_dict()), edit={"constants.pkl": pickle.dumps(Payload(), protocol=2)})
    data_with_extra = io.BytesIO(data)
    with zipfile.ZipFile(data_with_extra, "a") as zf:
        zf.writestr("archive/extra/hidden.pkl", pickle.dumps(Payload()))
    (tmp_path / "m.pt").write_bytes(data_with_extra.getvalue())
    result = scan(tmp_path / "m.pt")
    assert any("hidden.pkl" in f.location.path and f.severity == Severity.CRITICAL for f in result.findings)


def test_torch_zip_nested_in_a_function_package(tmp_path: Path) -> None:
    pkg = tmp_path / "function.zip"
    with zipfile.ZipFile(pkg, "w") as zf:
        zf.writestr("app.py", "print('hi')\n")
        zf.writestr("model/model.bin", _saved({"x": Payload()}))
    result = scan(pkg)
    assert result.worst() == Severity.CRITICAL
    assert any(f.location.path.startswith("function.zip!model/model.bin!") for f in result.findings)


@functools.cache
def _torchscript() -> bytes:
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(SmallNet().eval()), buf)
    return buf.getvalue()


def test_torchscript_is_clean(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    path.write_bytes(_torchscript())
    result = scan(path)
    assert not _high(result), result.findings
    assert [c.format for c in result.components] == ["torchscript"]


@pytest.mark.parametrize(
    "injected",
    [
        "import os\n",
        "x = __builtins__\n",
        "y = os.system('id')\n",
        "z = torch.ops.load_library('/tmp/evil.so')\n",
        "w = torch.from_file('/etc/passwd')\n",
    ],
)
def test_torchscript_tampered_code(tmp_path: Path, injected: str) -> None:
    data = _torchscript()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        code_name = next(n for n in zf.namelist() if "/code/" in n and n.endswith(".py"))
        original = zf.read(code_name).decode()
    edited = _rezip(data, edit={code_name.split("/", 1)[1]: (injected + original).encode()})
    (tmp_path / "ts.pt").write_bytes(edited)
    result = scan(tmp_path / "ts.pt")
    assert any(f.rule_id == "SAS-TORCH-001" and f.severity >= Severity.HIGH for f in result.findings), result.findings


def test_torchscript_custom_operator_namespace(tmp_path: Path) -> None:
    data = _torchscript()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        code_name = next(n for n in zf.namelist() if "/code/" in n and n.endswith(".py"))
        original = zf.read(code_name).decode()
    edited = _rezip(data, edit={code_name.split("/", 1)[1]: (original + "\nq = ops.myvendor.fast_gelu(x)\n").encode()})
    (tmp_path / "ts.pt").write_bytes(edited)
    result = scan(tmp_path / "ts.pt")
    assert "SAS-TORCH-002" in {f.rule_id for f in result.findings}


def test_legacy_format_benign_and_malicious(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    good.write_bytes(_saved(SmallNet().state_dict(), _use_new_zipfile_serialization=False))
    result = scan(good)
    assert result.findings == ()
    assert [c.format for c in result.components] == ["pytorch"]
    bad = tmp_path / "bad.pt"
    bad.write_bytes(_saved({"w": torch.ones(2), "x": Payload()}, _use_new_zipfile_serialization=False))
    assert scan(bad).worst() == Severity.CRITICAL


def test_plain_pickled_tensor_is_clean(analyse) -> None:
    # pickle.dumps(tensor) embeds a torch.save stream handed to torch.storage._load_from_bytes
    report = analyse(pickle.dumps({"t": torch.arange(5.0)}))
    assert report.worst is None, [h.message for h in report.hits]
    assert report.nested


def test_embedded_checkpoint_with_payload(payloads, analyse) -> None:
    inner = _saved({"x": Payload()})
    outer = pickle.dumps(payloads.reduce_class(torch.storage._load_from_bytes, inner))
    report = analyse(outer)
    assert report.worst == Severity.CRITICAL


def test_corrupt_zip_named_pt(tmp_path: Path) -> None:
    data = _saved(SmallNet().state_dict())
    (tmp_path / "broken.pt").write_bytes(data[: len(data) // 2])
    result = scan(tmp_path / "broken.pt")
    assert result.findings or result.errors


def _legacy_tar(record: bytes) -> bytes:
    """A pre-1.0 tar checkpoint written by hand (torch no longer writes this format)."""
    import struct
    import tarfile

    storage = pickle.dumps(1, protocol=2) + record + struct.pack("<q", 3) + b"\0" * 12 + pickle.dumps([], protocol=2)
    tensors = pickle.dumps(1, protocol=2) + pickle.dumps(("t0", "0", torch.FloatTensor), protocol=2)
    tensors += struct.pack("<ii", 1, 0) + struct.pack("<qqq", 3, 1, 0)
    members = {
        "sys_info": pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2),
        "pickle": pickle.dumps({"weight": 1.0}, protocol=2),
        "storages": storage,
        "tensors": tensors,
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return buf.getvalue()


def test_legacy_tar_format(tmp_path: Path) -> None:
    good = tmp_path / "old.pt"
    good.write_bytes(_legacy_tar(pickle.dumps(("0", "cpu", torch.FloatStorage), protocol=2)))
    result = scan(good)
    assert not _high(result), result.findings
    assert [c.format for c in result.components] == ["pytorch"]
    bad = tmp_path / "old_bad.pt"
    bad.write_bytes(_legacy_tar(pickle.dumps(("0", "cpu", Payload()), protocol=2)))
    assert scan(bad).worst() == Severity.CRITICAL


def test_package_holding_an_unpacked_checkpoint_is_walked_not_consumed(tmp_path: Path) -> None:
    # A function zip with a torch folder at its top and other files: every member must still be visited.
    pkg = tmp_path / "function.zip"
    with zipfile.ZipFile(io.BytesIO(_saved(SmallNet().state_dict()))) as src, zipfile.ZipFile(pkg, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr("handler.pkl", pickle.dumps(Payload()))
    result = scan(pkg)
    assert any(
        f.location.path == "function.zip!handler.pkl" and f.severity == Severity.CRITICAL for f in result.findings
    )


def test_config_allow_list_silences_the_models_own_class(tmp_path: Path) -> None:
    from sas.scan.settings import ScanSettings

    path = tmp_path / "model.pth"
    torch.save(SmallNet(), path)
    settings = ScanSettings(pickle_allow=(f"{SmallNet.__module__}.*",))
    assert scan(path, settings).findings == ()


def test_zip_bomb_member_is_not_read(tmp_path: Path) -> None:
    data = _saved(SmallNet().state_dict())
    bomb = io.BytesIO(data)
    with zipfile.ZipFile(bomb, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("archive/extra.pkl", b"\x00" * (64 << 20))
    (tmp_path / "m.pt").write_bytes(bomb.getvalue())
    result = scan(tmp_path / "m.pt")
    assert "SAS-TORCH-003" in {f.rule_id for f in result.findings}
