"""Key names a keymap may use: spelled the way Textual reports them, and actually sendable.

Textual matches bindings by exact string, so "Shift+Alt+P" must become "alt+shift+p" (its parser
sorts modifiers alphabetically). Beyond spelling, many combinations never reach the app as
themselves in an ordinary terminal or tmux (legacy encoding): ctrl+i *is* Tab, ESC+1 is read as
"¡", ESC+b as ctrl+left. Binding those would give a key that silently does nothing, so they are
refused with the reason. Keys the transcript editor needs are refused for actions that fire while
typing, because a priority binding would take them away from the editor.
"""

from __future__ import annotations

import string
from functools import cache

from textual.keys import _character_to_key

_MODIFIER_ALIASES = {
    "ctrl": "ctrl",
    "control": "ctrl",
    "alt": "alt",
    "option": "alt",
    "opt": "alt",
    "meta": "alt",  # terminals send Meta as ESC-prefix, the same bytes as Alt
    "shift": "shift",
}
_KITTY_ONLY_MODIFIERS = frozenset({"super", "hyper", "cmd", "command", "win"})

_NAMED = frozenset(
    {
        "escape",
        "enter",
        "tab",
        "space",
        "backspace",
        "left",
        "right",
        "up",
        "down",
        "home",
        "end",
        "insert",
        "delete",
        "pageup",
        "pagedown",
    }
)
_NAME_ALIASES = {
    "esc": "escape",
    "return": "enter",
    "del": "delete",
    "ins": "insert",
    "pgup": "pageup",
    "pgdn": "pagedown",
    "page_up": "pageup",
    "page_down": "pagedown",
    "bksp": "backspace",
}
# Keys with a modifier bit that CSI sequences carry (xterm, tmux, VTE, iTerm2 all send these).
_NAVIGATION = frozenset(
    {"left", "right", "up", "down", "home", "end", "insert", "delete", "pageup", "pagedown"}
)
_FUNCTION = frozenset(f"f{n}" for n in range(1, 25))
_LETTERS = frozenset(string.ascii_lowercase)
_DIGITS = frozenset(string.digits)
_PUNCTUATION = {_character_to_key(c): c for c in string.punctuation}
_BASE_NAMES = _NAMED | _FUNCTION | _LETTERS | _DIGITS | frozenset(_PUNCTUATION)

# ctrl+letter that is a control character with its own name in every terminal.
_CTRL_SAME_AS = {"i": "Tab", "m": "Enter", "h": "Backspace", "left_square_bracket": "Escape"}
# ctrl+punctuation that legacy terminals do encode, under Textual's names.
_CTRL_PUNCTUATION = frozenset(
    {"backslash", "right_square_bracket", "circumflex_accent", "underscore"}
)
_ALT_LETTER_AS = {"b": "ctrl+left", "f": "ctrl+right"}  # ESC b / ESC f: readline word motion

# Keys that are for moving between widgets and closing dialogs, whatever has focus.
_NAVIGATION_KEYS = {"tab": "moves focus", "shift+tab": "moves focus", "escape": "closes dialogs"}


class KeyProblem(ValueError):
    """Why a key string cannot be bound; the text reads after "'<key>' …"."""


@cache
def editor_keys() -> dict[str, str]:
    """Keys the transcript editor (TextArea) and text inputs bind, with what they do there."""
    from textual.widgets import Input, TextArea  # heavy import, only when a keymap is checked

    keys: dict[str, str] = {}
    for widget in (TextArea, Input):
        for binding in widget.BINDINGS:
            if isinstance(binding, tuple):
                continue
            for key in binding.key.split(","):
                keys.setdefault(key.strip(), binding.description or binding.action)
    return keys


def _split(raw: str) -> tuple[list[str], str]:
    text = raw.strip().lower()
    if text in {"+", "plus"}:
        return [], "plus"
    if text.endswith("++"):  # "ctrl++"
        return text[:-2].split("+"), "plus"
    *mods, base = text.split("+")
    return mods, base


def _base_name(base: str) -> str:
    if not base:
        raise KeyProblem("is not a key: nothing after the last '+'")
    if len(base) == 1:
        base = _character_to_key(base)
    base = _NAME_ALIASES.get(base, base)
    if base == "at":
        return "@"
    if base not in _BASE_NAMES and base != "@":
        import difflib

        close = difflib.get_close_matches(base, sorted(_BASE_NAMES), n=1, cutoff=0.6)
        hint = f", did you mean {close[0]!r}?" if close else ""
        raise KeyProblem(
            f"is not a key name Textual knows (letters, digits, f1–f24, escape, enter, tab, "
            f"space, backspace, arrows, home/end, pageup/pagedown, insert/delete, or a "
            f"punctuation name such as 'slash'){hint}"
        )
    return base


def _modifiers(mods: list[str]) -> list[str]:
    result: set[str] = set()
    for mod in mods:
        if mod in _KITTY_ONLY_MODIFIERS:
            raise KeyProblem(f"uses {mod!r}: terminals do not send it (use ctrl or alt)")
        canonical = _MODIFIER_ALIASES.get(mod)
        if canonical is None:
            raise KeyProblem(f"has unknown modifier {mod!r} (use ctrl, alt, shift)")
        result.add(canonical)
    return sorted(result)  # Textual's parser reports modifiers in alphabetical order


def _terminal_problem(mods: list[str], base: str) -> str | None:
    """Why a terminal cannot deliver this combination as itself, or None if it can."""
    ctrl, alt, shift = "ctrl" in mods, "alt" in mods, "shift" in mods
    is_letter = base in _LETTERS
    if base == "f3" and mods:
        return "cannot be used: terminals send it as CSI 1;nR, which is read as a cursor report"
    if base in _FUNCTION or (base in _NAVIGATION and mods):
        return None
    if base in _NAMED - _NAVIGATION and mods and [*mods, base] != ["shift", "tab"]:
        return f"cannot be used: terminals send it as plain {base}"
    if ctrl and alt:
        return "cannot be used: terminals drop the alt and send plain ctrl"
    if ctrl and base == "@":
        return None
    if ctrl and shift and is_letter:
        return f"cannot be used: terminals send it as ctrl+{base}"
    if ctrl and base in _CTRL_SAME_AS:
        return f"cannot be used: terminals send it as {_CTRL_SAME_AS[base]}"
    if ctrl and not is_letter and base not in _CTRL_PUNCTUATION:
        return "cannot be used: terminals send no distinct code for it"
    if alt and is_letter and not shift and base in _ALT_LETTER_AS:
        return f"cannot be used: terminals send it as {_ALT_LETTER_AS[base]} (word motion)"
    if alt and shift and base == "o":
        return "cannot be used: ESC O starts the terminal's own key sequences"
    if alt and not is_letter:
        return "cannot be used: terminals send ESC + the key, read as another key (alt+1 as '¡')"
    if base == "@":
        return "is only usable as ctrl+@ (which is also ctrl+space)"
    return None


def _typing_problem(key: str, mods: list[str], base: str) -> str | None:
    """Why a key would break typing in the transcript if bound with priority, or None."""
    if key in _NAVIGATION_KEYS:
        return f"is reserved: it {_NAVIGATION_KEYS[key]}"
    if key in editor_keys():
        return f"is the transcript editor's {editor_keys()[key]!r} key"
    if base in _FUNCTION or "ctrl" in mods or "alt" in mods:
        return None
    return "needs ctrl, alt or a function key: this action fires while the annotator types"


def canonical_keys(raw: str, *, typing_context: bool) -> list[str]:
    """The Textual key names for one user-written key (usually one; ctrl+space gives two).

    `typing_context`: the action fires while a text field has focus, so editing keys are refused.
    Raises KeyProblem with the reason.
    """
    try:
        mods_raw, base_raw = _split(raw)
        mods = _modifiers(mods_raw)
        base = _base_name(base_raw)
        if base == "space" and mods == ["ctrl"]:
            base = "@"  # legacy terminals send NUL, which Textual names ctrl+@
        problem = _terminal_problem(mods, base)
        key = "+".join([*mods, base])
        if problem is None and typing_context:
            problem = _typing_problem(key, mods, base)
    except KeyProblem as exc:
        raise KeyProblem(f"{raw.strip()!r} {exc}") from None
    if problem is not None:
        raise KeyProblem(f"{raw.strip()!r} {problem}")
    if key == "ctrl+@":
        return ["ctrl+@", "ctrl+space"]  # the kitty keyboard protocol reports it by name
    return [key]
