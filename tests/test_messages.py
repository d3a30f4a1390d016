"""Issue 14 item 13: the messages say what is true and where to look, as real processes show them.

- A clash in `[keys]` names the config file actually used and its line.
- `annotator doctor` measures the controlling terminal (not stdout), and says so when there is
  none instead of failing on "0×0".
- The README documents the `--asr-hint-from` format (its example is what the loader reads).
- The no-audio banner says where to look once.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from annotator.app import AnnotatorApp
from api.server.ingest import load_asr_hints
from tests.fixtures.audio import write_no_device
from tests.fixtures.server import REPO_ROOT, LiveServer, annotator_command
from tests.test_doctor import base_env
from tests.tui.helpers import services_for, wait_for_clip
from tests.tui.tmux import ANNOTATOR, Tmux, tmux, wait_for

__all__ = ["tmux"]  # the fixture


def test_a_keys_clash_names_the_config_file_and_line(tmp_path: Path) -> None:
    config = tmp_path / "elsewhere" / "my-settings.toml"
    config.parent.mkdir()
    config.write_text(
        'server = "http://127.0.0.1:9"\ntoken = "not-used"\n\n[keys]\n"form.submit" = "f5"\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANNOTATOR_")}
    env["ANNOTATOR_HOME"] = str(tmp_path / "home")
    proc = subprocess.run(
        [*annotator_command(), "--config", str(config), "--audio", "none"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{config} line 5: 'f5' is bound to both player.toggle and form.submit" in proc.stderr


def test_doctor_without_a_terminal_says_so_instead_of_failing_on_0x0(
    tmp_path: Path, live_server: LiveServer
) -> None:
    env = base_env(tmp_path, live_server)
    for name in ("COLUMNS", "LINES"):
        env.pop(name)
    proc = subprocess.run(
        [*annotator_command(), "doctor"],
        env=env,
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        start_new_session=True,  # no controlling terminal, as under cron or CI
    )
    (line,) = [ln for ln in proc.stdout.splitlines() if ln.startswith("│ terminal ")]
    assert "warn" in line.lower() and "no terminal to measure" in line, proc.stdout
    assert "0×0" not in proc.stdout


@pytest.mark.tmux
def test_doctor_measures_the_controlling_terminal_when_stdout_is_a_file(
    tmux: Tmux, tmp_path: Path, live_server: LiveServer
) -> None:
    env = base_env(tmp_path, live_server)
    for name in ("COLUMNS", "LINES"):
        env.pop(name)
    tmux.env = env
    out = tmp_path / "doctor.txt"
    tmux.run(
        "new-session", "-d", "-s", tmux.session, "-x", "100", "-y", "30",
        f"{shlex.quote(str(ANNOTATOR))} doctor > {shlex.quote(str(out))} 2>&1; sleep 30",
    )  # fmt: skip
    # Read as bytes: the file may end mid-character while doctor is still writing it.
    wait_for(
        lambda: out.exists() and "│ keymap " in out.read_bytes().decode(errors="replace"),
        "doctor's table",
        60,
        tmux,
    )
    (line,) = [ln for ln in out.read_text().splitlines() if ln.startswith("│ terminal ")]
    assert "100×30" in line, out.read_text()


def test_the_readme_documents_the_asr_hint_file_format(tmp_path: Path) -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("`--asr-hint-from FILE`") :]
    example = re.search(r"```text\n(.*?)```", section, re.S)
    assert example is not None
    hints = tmp_path / "hints.txt"
    hints.write_text(example.group(1))
    assert load_asr_hints(hints) == {
        "clip-0001.wav": "set an alarm for seven",
        "clip-0002.wav": "turn off the kitchen lights",
    }
    for words in ("base name", "header", "line"):
        assert words in section[:2000]


async def test_the_no_audio_banner_says_where_to_look_once(
    tmp_path: Path,
    live_server: LiveServer,
    test_wavs: Callable[..., list[Path]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    live_server.ingest(test_wavs(2))
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    no_device = write_no_device(tmp_path / "alsa-home")  # no sound card, no PulseAudio
    for name in ("HOME", "PULSE_SERVER"):
        monkeypatch.setenv(name, no_device[name])
    services = services_for(live_server, audio="auto")
    services.start()
    app = AnnotatorApp(services)
    try:
        async with app.run_test(size=(120, 32)) as pilot:
            screen = await wait_for_clip(pilot, app)
            assert services.player.name == "none", services.player_reason
            banner = str(screen.query_one("#banner").render())
            assert banner.startswith("no audio device"), banner
            assert banner.count("annotator doctor") == 1, banner
    finally:
        services.shutdown()
