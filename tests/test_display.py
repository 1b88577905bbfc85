"""Text from outside (file names, headers, ids) is printed for people with its control characters visible."""

from __future__ import annotations

import pytest

from sas.display import visible


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b]0;owned\x07title", "\\x1b]0;owned\\x07title"),  # sets the terminal's title
        ("\x1b[2J\x1b[Hclean", "\\x1b[2J\\x1b[Hclean"),  # clears the screen
        ("a\nCRITICAL  forged row", "a\\nCRITICAL  forged row"),
        ("x\r", "x\\r"),
        ("\x7f\x9b", "\\x7f\\x9b"),  # DEL, and the C1 control sequence introducer
        ("evil\u202etxt.py", "evil\\u202etxt.py"),  # a right-to-left override reverses what follows
        ("\u2066a\u2069", "\\u2066a\\u2069"),
    ],
)
def test_control_and_reordering_characters_are_shown_as_escapes(raw: str, shown: str) -> None:
    assert visible(raw) == shown


def test_ordinary_text_in_any_script_is_left_alone() -> None:
    text = "modèle_données 模型 🙂 model.pkl:12:3 (a|b) [x] ~"
    assert visible(text) is text or visible(text) == text
