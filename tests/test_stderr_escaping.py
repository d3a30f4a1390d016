"""`annotator tui/demo` (launch.py) and `annotator relay` print their own error lines; those quote
configs, servers and exceptions, so they are escaped like every other terminal output."""

from __future__ import annotations

import pytest

from annotator import launch, relay_cli

HOSTILE = "bad \x1b]0;owned\x07\x1b[2J \u202eevil"


@pytest.mark.parametrize("write", [launch._fail, relay_cli._err])
def test_error_lines_draw_controls_visibly(write, capsys: pytest.CaptureFixture[str]) -> None:
    write(HOSTILE)
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "\u202e" not in err
    assert "\\x1b]0;owned\\x07\\x1b[2J \\u202eevil" in err
