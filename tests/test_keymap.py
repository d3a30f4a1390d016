"""Keymaps: the shipped files, every error a keymap can have, overrides, and real key presses."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual._xterm_parser import XTermParser
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import TextArea

from annotator.actions import ACTION_IDS, ACTIONS, ANNOTATE, SUPERVISE, actions_for
from annotator.keymap import (
    KeymapError,
    ResolvedKeymap,
    app_bindings,
    load_keymap,
    toml_key_lines,
)
from annotator.keynames import KeyProblem, canonical_keys
from keymaps import keymap_dir, shipped_keymap_names

SHIPPED = ["default", "vim", "pedal"]


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ANNOTATOR_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def write(tmp_path: Path, text: str, name: str = "mine.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(name_or_path: str | Path, **kwargs: object) -> str:
    with pytest.raises(KeymapError) as info:
        load_keymap(str(name_or_path), **kwargs)  # type: ignore[arg-type]
    return str(info.value)


# --- the registry and the shipped keymaps ------------------------------------------------------


def test_registry_has_the_contracted_ids_and_actions() -> None:
    by_id = {a.id: a.action for a in ACTIONS}
    assert by_id["player.toggle"] == "player_toggle"
    assert by_id["form.clear-transcript"] == "form_clear_transcript"
    assert by_id["app.help"] == "show_help"
    assert by_id["app.quit"] == "quit"
    assert by_id["flag.self-harm"] == "toggle_flag('self_harm')"
    assert by_id["flag.media-playback"] == "toggle_flag('media_playback')"
    assert by_id["tag.noise"] == "insert_tag('[noise]')"
    flags = {i for i in ACTION_IDS if i.startswith("flag.")}
    tags = {i for i in ACTION_IDS if i.startswith("tag.")}
    assert len(flags) == 8 and len(tags) == 8
    assert len(ACTION_IDS) == len(ACTIONS)
    assert len(actions_for(ANNOTATE)) == 41
    console = {a.id for a in actions_for(SUPERVISE)}
    assert {"escalation.ack", "escalation.resolve", "escalation.reopen"} <= console
    assert {"console.people", "people.revoke"} <= console
    # the console hears a clip with the annotator's own player keys
    assert {a.id for a in ACTIONS if a.id.startswith("player.")} <= console


def test_shipped_keymaps_are_found_by_name() -> None:
    assert shipped_keymap_names() == sorted(SHIPPED)
    assert (keymap_dir() / "default.toml").is_file()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_keymap_covers_every_action(name: str) -> None:
    keymap = load_keymap(name)
    assert keymap.name == name
    assert keymap.source == keymap_dir() / f"{name}.toml"
    assert set(keymap.bindings) == ACTION_IDS
    assert all(keymap.keys_for(i) for i in ACTION_IDS)


def test_pedal_extends_default_and_adds_the_three_pedals() -> None:
    default, pedal = load_keymap("default"), load_keymap("pedal")
    assert pedal.keys_for("player.back")[0] == "f9"
    assert pedal.keys_for("player.toggle")[0] == "f10"
    assert pedal.keys_for("player.forward")[0] == "f11"
    # the keyboard keys for the same actions still work, and everything else is the default
    assert set(default.keys_for("player.toggle")) < set(pedal.keys_for("player.toggle"))
    rest = ACTION_IDS - {"player.back", "player.toggle", "player.forward"}
    assert {i: pedal.bindings[i] for i in rest} == {i: default.bindings[i] for i in rest}


def test_every_shipped_keymap_has_an_f_key_for_what_is_pressed_mid_typing() -> None:
    # Alt keys garble in tmux and xterm (tests/tui/test_alt_keys.py, test_xterm.py): every tag,
    # flag, undo and clear has the default keymap's F-key in every shipped keymap.
    default = load_keymap("default")
    mid_typing = {i for i in ACTION_IDS if i.startswith(("tag.", "flag."))}
    mid_typing |= {"form.undo", "form.clear-transcript"}
    for name in SHIPPED:
        keymap = load_keymap(name)
        for action in sorted(mid_typing):
            f_keys = [k for k in default.keys_for(action) if re.search(r"\bf\d+$", k)]
            assert f_keys, action
            assert set(f_keys) <= set(keymap.keys_for(action)), (name, action)


def test_none_means_default() -> None:
    assert load_keymap(None) == load_keymap("default")


def _xterm_bytes(key: str) -> str | None:
    """How xterm/tmux encode `key` (legacy mode), for the subset of keys keymaps use."""
    *mods, base = key.split("+")
    code = 1 + ("shift" in mods) + 2 * ("alt" in mods) + 4 * ("ctrl" in mods)
    tilde = {5: 15, 6: 17, 7: 18, 8: 19, 9: 20, 10: 21, 11: 23, 12: 24}
    if base.startswith("f") and base[1:].isdigit():
        n = int(base[1:])
        if n <= 4:
            final = "PQRS"[n - 1]
            return f"\x1b[1;{code}{final}" if code > 1 else f"\x1bO{final}"
        return f"\x1b[{tilde[n]};{code}~" if code > 1 else f"\x1b[{tilde[n]}~"
    arrows = {"up": "A", "down": "B", "right": "C", "left": "D"}
    if base in arrows:
        final = arrows[base]
        return f"\x1b[1;{code}{final}" if code > 1 else f"\x1b[{final}"
    if base in string.ascii_lowercase:
        if not mods:
            return base  # a plain letter (the supervisor's console binds them)
        if mods == ["ctrl"]:
            return chr(ord(base) - 96)
        if mods == ["alt"]:
            return "\x1b" + base
        if mods == ["alt", "shift"]:
            return "\x1b" + base.upper()
    if key == "ctrl+@":
        return "\x00"
    if key == "ctrl+space":
        return "\x1b[32;5u"  # kitty keyboard protocol
    return None


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_key_is_what_textual_reads_from_a_terminal(name: str) -> None:
    for binding_id, keys in load_keymap(name).bindings.items():
        for key in keys.split(","):
            data = _xterm_bytes(key)
            assert data is not None, f"{name}: {binding_id}: no known terminal encoding for {key}"
            parser = XTermParser()
            events = [*parser.feed(data), *parser.feed("")]
            assert [getattr(e, "key", None) for e in events] == [key], (binding_id, repr(data))


# --- errors: file, line and id in every message --------------------------------------------------


def test_unknown_id_names_file_line_id_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "x"\n\n[bindings]\n"player.tögle" = "f5"\n')
    message = error_of(path)
    assert f"{path} line 4: unknown action id 'player.tögle'" in message
    assert "did you mean 'player.toggle'?" in message


def test_malformed_toml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'name = "x"\n[bindings]\n"player.toggle" = f5\n')
    message = error_of(path)
    assert message.startswith(f"{path} line 3: malformed TOML:")


def test_clash_names_both_lines_and_both_ids(tmp_path: Path) -> None:
    text = (
        '[bindings]\n"form.submit" = "ctrl+s"\n"player.replay" = "f4"\n"player.toggle" = "ctrl+s"\n'
    )
    message = error_of(write(tmp_path, text))
    assert "line 2 and line 4: 'ctrl+s' is bound to both form.submit and player.toggle" in message


def test_clash_with_an_inherited_key_names_both_files(tmp_path: Path) -> None:
    path = write(tmp_path, '[bindings]\n"form.submit" = "f5"\n')  # f5 is the default play/pause
    message = error_of(path)
    assert f"default.toml line 16 and {path} line 2: 'f5' is bound to both" in message
    assert "player.toggle and form.submit" in message


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("ctrl+i", "terminals send it as Tab"),
        ("ctrl+m", "terminals send it as Enter"),
        ("ctrl+h", "terminals send it as Backspace"),
        ("alt+1", "read as another key"),
        ("alt+f", "ctrl+right"),
        ("ctrl+shift+s", "terminals send it as ctrl+s"),
        ("shift+f3", "read as a cursor report"),
        ("ctrl+f3", "read as a cursor report"),
        ("ctrl+enter", "plain enter"),
        ("ctrl+z", "editor's 'Undo' key"),
        ("ctrl+c", "editor's 'Copy' key"),
        ("f7", "editor's 'Select all' key"),
        ("shift+left", "editor's"),
        ("x", "needs ctrl, alt or a function key"),
        ("tab", "moves focus"),
        ("ctrl+spam", "is not a key name"),
        ("hyper+x", "terminals do not send it"),
        ("banana+x", "unknown modifier"),
    ],
)
def test_unusable_or_invalid_key_names_line_id_and_reason(
    tmp_path: Path, key: str, reason: str
) -> None:
    path = write(tmp_path, f'name = "x"\n[bindings]\n\n"form.undo" = {json.dumps(key)}\n')
    message = error_of(path)
    assert f"{path} line 4: form.undo: {key!r}" in message
    assert reason in message


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    text = '[bindings]\n"nope" = "f5"\n"form.undo" = "ctrl+i"\n"form.skip" = 3\nextra = 1\n'
    message = error_of(write(tmp_path, text))
    assert "line 2: unknown action id 'nope'" in message
    assert "line 3: form.undo: 'ctrl+i'" in message
    assert "line 4: form.skip: expected a key" in message
    assert "line 5: unknown action id 'extra'" in message


def test_unknown_top_level_key_and_empty_key(tmp_path: Path) -> None:
    path = write(tmp_path, 'nmae = "x"\n[bindings]\n"form.undo" = ""\n')
    message = error_of(path)
    assert f"{path} line 1: unknown top-level key 'nmae'" in message
    assert f"{path} line 3: form.undo: empty key" in message


def test_extends_cycle_and_missing_names(tmp_path: Path) -> None:
    write(tmp_path, 'extends = "b.toml"\n', "a.toml")
    write(tmp_path, 'extends = "a.toml"\n', "b.toml")
    assert "goes round in a circle" in error_of(tmp_path / "a.toml")
    assert "unknown keymap 'vmi': did you mean 'vim'?" in error_of("vmi")
    assert "keymap file not found" in error_of(tmp_path / "absent.toml")


def test_error_never_returns_a_partial_keymap(tmp_path: Path) -> None:
    path = write(tmp_path, '[bindings]\n"form.submit" = "f12"\n"form.undo" = "ctrl+i"\n')
    with pytest.raises(KeymapError):
        load_keymap(str(path))


# --- user keymaps, extends, overrides -----------------------------------------------------------


def test_user_keymap_inherits_default_and_accepts_toml_spellings(tmp_path: Path) -> None:
    text = (
        'name = "mine"\n[bindings]\nform.submit = "Ctrl+S, F12"\n'
        '"player.toggle" = ["f5", "ctrl+space"]\n"form.undo" = "shift+alt+z"\n'
        '[bindings.app]\nhelp = "ctrl+f1"\n'
    )
    keymap = load_keymap(str(write(tmp_path, text)))
    assert keymap.name == "mine"
    assert keymap.keys_for("form.submit") == ["ctrl+s", "f12"]
    assert keymap.keys_for("player.toggle") == ["f5", "ctrl+@", "ctrl+space"]
    assert keymap.keys_for("form.undo") == ["alt+shift+z"]
    assert keymap.keys_for("app.help") == ["ctrl+f1"]
    assert keymap.bindings["tag.noise"] == load_keymap("default").bindings["tag.noise"]


def test_user_keymap_by_name_from_the_config_dir(_home: Path) -> None:
    (_home / "config" / "keymaps").mkdir(parents=True)
    (_home / "config" / "keymaps" / "night.toml").write_text(
        'extends = "vim"\n[bindings]\n"app.help" = "f2"\n"player.back" = "alt+h"\n'
    )
    keymap = load_keymap("night")
    assert keymap.keys_for("app.help") == ["f2"]
    assert keymap.keys_for("player.slower") == load_keymap("vim").keys_for("player.slower")


def test_toml_key_lines_handles_quoting_and_tables() -> None:
    text = '# c\n[bindings]\n"a.b" = 1\nc.d = [\n  "x",\n]\n[bindings.e]\nf = 2\n\'g\' = 3\n'
    lines = toml_key_lines(text)
    assert lines["bindings"] == 2
    assert lines["bindings.a.b"] == 3
    assert lines["bindings.c.d"] == 4
    assert lines["bindings.e.f"] == 8
    assert lines["bindings.e.g"] == 9


def test_overrides_apply_on_top() -> None:
    keymap = load_keymap("pedal", {"form.submit": "f12", "tag.noise": ["alt+q", "ctrl+b"]})
    assert keymap.keys_for("form.submit") == ["f12"]
    assert keymap.keys_for("tag.noise") == ["alt+q", "ctrl+b"]
    assert keymap.keys_for("player.toggle")[0] == "f10"


def test_overrides_are_clash_checked_and_name_the_config_line(tmp_path: Path) -> None:
    config = write(
        tmp_path, 'server = "http://127.0.0.1:1"\n[keys]\n"form.submit" = "f9"\n', "c.toml"
    )
    message = error_of("pedal", overrides={"form.submit": "f9"}, overrides_source=str(config))
    assert "pedal.toml line" in message
    assert f"{config} line 3: 'f9' is bound to both player.back and form.submit" in message


def test_overrides_with_unknown_id_or_bad_key_fail(tmp_path: Path) -> None:
    message = error_of("default", overrides={"form.sumbit": "f12", "form.undo": "ctrl+i"})
    assert "config.toml: unknown action id 'form.sumbit': did you mean 'form.submit'?" in message
    assert "config.toml: form.undo: 'ctrl+i' cannot be used" in message


def test_canonical_key_spelling() -> None:
    assert canonical_keys("Shift+Alt+P", typing_context=True) == ["alt+shift+p"]
    assert canonical_keys("esc", typing_context=False) == ["escape"]
    with pytest.raises(KeyProblem):
        canonical_keys("escape", typing_context=True)


# --- the bindings in a real App ------------------------------------------------------------------


class Recorder(App[None]):
    """Records the actions its key bindings fire, with a transcript editor to type into."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def compose(self) -> ComposeResult:
        yield TextArea(id="transcript")

    def action_player_toggle(self) -> None:
        self.calls.append("toggle")

    def action_form_submit(self) -> None:
        self.calls.append("submit")

    def action_toggle_flag(self, flag: str) -> None:
        self.calls.append(f"flag:{flag}")

    def action_insert_tag(self, tag: str) -> None:
        self.calls.append(f"tag:{tag}")


def make_app(keymap: ResolvedKeymap) -> type[Recorder]:
    class Bound(Recorder):
        BINDINGS: ClassVar[list[BindingType]] = list(app_bindings(keymap.bindings))

    return Bound


async def test_mapped_keys_fire_while_the_transcript_has_focus() -> None:
    keymap = load_keymap("default")
    app = make_app(keymap)()
    async with app.run_test() as pilot:
        area = app.query_one(TextArea)
        area.focus()
        await pilot.press("h", "i", "f5", "alt+shift+p", "alt+n", "ctrl+s")
        await pilot.pause()
        assert area.text == "hi"  # letters still type; the bound keys did not
        assert app.calls == ["toggle", "flag:pii", "tag:[noise]", "submit"]


class GreedyArea(TextArea):
    """A focused widget that binds the very keys the App binds: only priority lets the App win."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f5", "swallow"),
        Binding("ctrl+s", "swallow"),
        Binding("alt+shift+p", "swallow"),
    ]

    def action_swallow(self) -> None:
        self.app.exit(message="swallowed")


class GreedyRecorder(Recorder):
    BINDINGS: ClassVar[list[BindingType]] = list(app_bindings())

    def compose(self) -> ComposeResult:
        yield GreedyArea()


async def test_priority_beats_the_focused_widgets_own_bindings() -> None:
    app = GreedyRecorder()
    async with app.run_test() as pilot:
        app.query_one(GreedyArea).focus()
        await pilot.press("f5", "ctrl+s", "alt+shift+p")
        await pilot.pause()
        assert app.calls == ["toggle", "submit", "flag:pii"]
        assert app.return_value is None and app.is_running


async def test_set_keymap_rebinds_at_run_time() -> None:
    app = make_app(load_keymap("default"))()
    pedal = load_keymap("pedal", {"form.submit": "f12"})
    async with app.run_test() as pilot:
        app.query_one(TextArea).focus()
        app.set_keymap(pedal.bindings)
        await pilot.press("f10", "ctrl+s", "f12")
        await pilot.pause()
        assert app.calls == ["toggle", "submit"]  # ctrl+s is no longer bound


def test_app_bindings_need_every_id() -> None:
    with pytest.raises(ValueError, match=r"no key for: .*player\.toggle"):
        app_bindings({"form.submit": "ctrl+s"})
    assert {b.id for b in app_bindings()} == {a.id for a in actions_for(ANNOTATE)}
    assert {b.id for b in app_bindings(view=SUPERVISE)} == {a.id for a in actions_for(SUPERVISE)}


# --- nothing but KeymapError, whatever the file says ---------------------------------------------

_FRAGMENTS = st.sampled_from(
    [
        'name = "x"',
        "[bindings]",
        "[bindings.player]",
        "[[bindings]]",
        'extends = "default"',
        'extends = "mine.toml"',
        'extends = "/"',
        "extends = 3",
        "bindings = 1",
        '"player.toggle" = ',
        "player.toggle = ",
        "toggle = ",
        '"form.submit" = ',
        '"flag.pii" = ',
        '"tag.noise" = ',
        "[",
        '"',
        "= =",
        "",
    ]
)
_KEYS = st.text(alphabet=string.ascii_letters + string.digits + "+-,[]@ _\x00é", max_size=20)
_VALUES = st.one_of(
    _KEYS.map(json.dumps),
    st.lists(_KEYS, max_size=3).map(json.dumps),
    st.integers().map(str),
    st.just("{}"),
    st.just("2024-01-01"),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(st.tuples(_FRAGMENTS, st.one_of(st.just(""), _VALUES)), max_size=8),
    noise=st.text(max_size=30),
    overrides=st.dictionaries(
        st.sampled_from([*sorted(ACTION_IDS)[:5], "nope", ""]),
        st.one_of(_KEYS, st.lists(_KEYS, max_size=2)),
        max_size=3,
    ),
)
def test_loader_raises_only_keymap_errors(
    tmp_path: Path, lines: list[tuple[str, str]], noise: str, overrides: dict[str, str | list[str]]
) -> None:
    text = "\n".join(f"{a}{b}" for a, b in lines) + "\n" + noise
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        keymap = load_keymap(str(path), overrides)
    except KeymapError as exc:
        assert str(exc)
    else:
        assert set(keymap.bindings) == ACTION_IDS
