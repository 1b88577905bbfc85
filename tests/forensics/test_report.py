"""The HTML report: self-contained, escaped, and it opens in headless Chromium showing the scripted attack."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from scripted_attack import FLOODER, PROBER, run

from sas.cli import main
from sas.forensics.incidents import find_incidents
from sas.forensics.report import render_report
from sas.forensics.timeline import ForensicEvent

CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def attack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return run(tmp_path_factory.mktemp("attack"), invocations=600)


@pytest.fixture(scope="module")
def report(attack: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.html"
    code = main(
        [
            "forensics",
            "report",
            str(attack["ledger"]),
            "--html",
            str(out),
            "--pub",
            str(attack["pub"]),
            "--anchor",
            f"sqlite:{attack['anchor']}",
        ]
    )
    assert code == 0
    return out


def test_report_is_self_contained(report: Path) -> None:
    page = report.read_text()
    assert "<svg" in page and "Verified" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # no CDN, no remote anything
    assert "<script" not in page


def test_attacker_strings_are_escaped() -> None:
    evil = ForensicEvent(
        "o:0",
        "o",
        0,
        1.0,
        "detection",
        "d",
        "model",
        "adversarial-input",
        "high",
        "block",
        "r",
        "<script>alert(1)</script>",
        "i",
        "f",
        "aws",
        {},
    )
    page = render_report("x", [evil], find_incidents([evil]), None)
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed: run `make chromium`")
def test_report_opens_in_headless_chromium_with_the_incidents(report: Path, tmp_path: Path) -> None:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars"]
    url = report.resolve().as_uri()
    dom = subprocess.run(
        [str(CHROMIUM), *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    # what the browser rendered: the verification banner and both incidents of the scripted attack
    assert "Verified" in dom and "INC-0001" in dom and "INC-0002" in dom
    assert f"ip:{PROBER}" in dom and f"ip:{FLOODER}" in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [str(CHROMIUM), *flags, "--window-size=1280,1400", f"--screenshot={shot}", url],
        capture_output=True,
        timeout=120,
        check=True,
    )
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # a drawn page, not a blank one
    assert int.from_bytes(data[16:20], "big") == 1280
