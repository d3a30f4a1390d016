"""Load a keymap (shipped name or TOML file), apply config.toml overrides, and validate all of it.

A keymap is either fully valid or refused: every problem is collected, then reported at once with
the file, line and binding id, so the annotator never starts with half their keys silently missing.

File format::

    name = "pedal"
    description = "…"
    extends = "default"          # optional: a shipped/user keymap name or a path
    [bindings]
    "player.toggle" = "f10"      # one key, "k1, k2", or ["k1", "k2"]

A file without `extends` still inherits default.toml for the ids it leaves out, so a keymap written
for an older version keeps working when actions are added.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.binding import Binding

from annotator.actions import ACTION_IDS, ACTIONS, ANNOTATE, action_spec, actions_for
from annotator.keynames import KeyProblem, canonical_keys
from keymaps import keymap_dir, shipped_keymap_names

DEFAULT_KEYMAP = "default"
_TOP_LEVEL = ("name", "description", "extends", "bindings")
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_EXTENDS = 8


class KeymapError(Exception):
    """A keymap that cannot be used; the message names file, line and binding id."""


@dataclass(frozen=True)
class ResolvedKeymap:
    name: str
    source: Path
    bindings: dict[str, str]
    """Binding id -> comma-joined keys: exactly what `App.set_keymap` takes."""

    def keys_for(self, binding_id: str) -> list[str]:
        keys = self.bindings.get(binding_id, "")
        return keys.split(",") if keys else []


# --- where keys are in a TOML file --------------------------------------------------------------

_SEGMENT = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
_DOTTED = rf"{_SEGMENT}(?:\s*\.\s*{_SEGMENT})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?")
_KEY_LINE = re.compile(rf"^\s*({_DOTTED})\s*=")
_SEGMENT_RE = re.compile(_SEGMENT)
_TOML_POSITION = re.compile(r"at line (\d+), column (\d+)")


def _unquote(segment: str) -> str:
    if segment.startswith("'"):
        return segment[1:-1]
    if segment.startswith('"'):
        try:
            value = tomllib.loads(f"k = {segment}")["k"]
        except tomllib.TOMLDecodeError:
            return segment[1:-1]
        return str(value)
    return segment


def toml_key_lines(text: str) -> dict[str, int]:
    """Dotted key path -> 1-based line where it is assigned (or its table opens).

    tomllib keeps no positions, so the text is scanned: `[bindings]` + `"player.toggle" = …`,
    `[bindings]` + `player.toggle = …` and `[bindings.player]` + `toggle = …` all index as
    "bindings.player.toggle". Only a valid file is scanned, so a rough lexer is enough.
    """
    lines: dict[str, int] = {}
    table: list[str] = []
    in_multiline = False
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count('"""') % 2 or line.count("'''") % 2:
                in_multiline = False
            continue
        if header := _HEADER.match(line):
            table = [_unquote(s) for s in _SEGMENT_RE.findall(header.group(1))]
            lines.setdefault(".".join(table), number)
        elif key := _KEY_LINE.match(line):
            path = table + [_unquote(s) for s in _SEGMENT_RE.findall(key.group(1))]
            lines.setdefault(".".join(path), number)
            rest = line[key.end() :]
            if rest.count('"""') % 2 or rest.count("'''") % 2:
                in_multiline = True
    return lines


def toml_error_line(error: tomllib.TOMLDecodeError, text: str) -> int:
    """The line tomllib reports in its message (it has no attribute for it before 3.14)."""
    if match := _TOML_POSITION.search(str(error)):
        return int(match.group(1))
    return max(1, text.count("\n") + 1)


# --- reading one file ---------------------------------------------------------------------------


@dataclass
class _Layer:
    """The bindings one file (or the config overrides) contributes."""

    label: str
    lines: dict[str, int]
    prefix: str
    bindings: dict[str, list[str]] = field(default_factory=dict)

    def where(self, binding_id: str | None = None) -> str:
        line = None
        if binding_id is not None:
            line = self.lines.get(f"{self.prefix}{binding_id}")
        if line is None:
            line = self.lines.get(self.prefix.rstrip("."))
        return f"{self.label} line {line}" if line else self.label

    def line_of(self, binding_id: str) -> int | None:
        return self.lines.get(f"{self.prefix}{binding_id}")


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Undo TOML's dotted-key nesting: `player.toggle = "f5"` is {"player": {"toggle": "f5"}}."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f": did you mean {close[0]!r}?" if close else ""


def _key_list(value: object) -> list[str] | None:
    """A binding value as raw key strings, or None when it is not a string or list of strings."""
    if isinstance(value, str):
        return [k.strip() for k in value.split(",")]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [k.strip() for v in value for k in v.split(",")]
    return None


def _read_bindings(layer: _Layer, table: Mapping[str, Any], errors: list[str]) -> None:
    known = sorted(ACTION_IDS)
    for binding_id, value in _flatten(table).items():
        where = layer.where(binding_id)
        if binding_id not in ACTION_IDS:
            errors.append(
                f"{where}: unknown action id {binding_id!r}{_did_you_mean(binding_id, known)}"
                f" — known ids: {', '.join(known)}"
            )
            continue
        keys = _key_list(value)
        if keys is None:
            errors.append(
                f"{where}: {binding_id}: expected a key, a comma-separated list or an array of "
                f"keys, got {type(value).__name__}"
            )
            continue
        if not keys or any(not k for k in keys):
            errors.append(f"{where}: {binding_id}: empty key — every action needs a key")
            continue
        layer.bindings[binding_id] = keys


def _read_file(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KeymapError(f"{path}: cannot read keymap: {exc}") from exc
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = toml_error_line(exc, text)
        raise KeymapError(f"{path} line {line}: malformed TOML: {exc}") from exc


def _find_named(name: str) -> Path:
    from annotator.paths import config_dir  # only needed for user keymaps

    if not _NAME.match(name):
        raise KeymapError(
            f"keymap {_shown(name)!r}: not a keymap name (1-64 letters, digits, _ or -); "
            "give a name or a path to a .toml"
        )
    for directory in (keymap_dir(), config_dir() / "keymaps"):
        candidate = directory / f"{name}.toml"
        try:
            found = candidate.is_file()
        except (OSError, RuntimeError, ValueError) as exc:
            raise KeymapError(
                f"keymap {name!r}: cannot look in {_shown(directory)}: {_path_problem(exc)}"
            ) from None
        if found:
            return candidate
    shipped = shipped_keymap_names()
    raise KeymapError(
        f"unknown keymap {name!r}{_did_you_mean(name, shipped)} — shipped: {', '.join(shipped)}; "
        f"or put {name}.toml in {config_dir() / 'keymaps'}, or give a path to a .toml file"
    )


def _shown(value: object, limit: int = 120) -> str:
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


def _path_problem(exc: OSError | RuntimeError | ValueError) -> str:
    """Why a path cannot be used, without echoing the (possibly huge) path itself."""
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__


def _locate(name_or_path: str, relative_to: Path | None) -> Path:
    if name_or_path.endswith(".toml") or "/" in name_or_path or "\\" in name_or_path:
        where = f"`extends` in {_shown(relative_to)}/: " if relative_to is not None else ""
        try:
            path = Path(name_or_path).expanduser()
            if relative_to is not None and not path.is_absolute():
                path = relative_to / path
            found = path.is_file()
        except (OSError, RuntimeError, ValueError) as exc:
            raise KeymapError(
                f"{where}keymap file {_shown(name_or_path)!r} cannot be used: "
                f"{_path_problem(exc)} — give the path of an existing .toml file"
            ) from None
        if not found:
            raise KeymapError(f"{_shown(path)}: keymap file not found")
        return path
    return _find_named(name_or_path)


def _load_chain(path: Path, errors: list[str]) -> tuple[str, list[_Layer]]:
    """The file's layers, base first, following `extends` (implicitly "default")."""
    layers: list[_Layer] = []
    seen: list[Path] = []
    name: str | None = None
    default_path = keymap_dir() / f"{DEFAULT_KEYMAP}.toml"
    current: Path | None = path
    while current is not None:
        resolved = current.resolve()
        if resolved in seen:
            chain = " -> ".join(str(p) for p in [*seen, resolved])
            raise KeymapError(f"{current}: `extends` goes round in a circle: {chain}")
        if len(seen) >= _MAX_EXTENDS:
            raise KeymapError(f"{current}: `extends` nests deeper than {_MAX_EXTENDS} files")
        seen.append(resolved)
        text, data = _read_file(current)
        layer = _Layer(label=str(current), lines=toml_key_lines(text), prefix="bindings.")
        for key in data:
            if key not in _TOP_LEVEL:
                errors.append(
                    f"{current} line {layer.lines.get(key, '?')}: unknown top-level key {key!r} "
                    f"— allowed: {', '.join(_TOP_LEVEL)}; bindings go under [bindings]"
                )
        for key in ("name", "description", "extends"):
            if key in data and not isinstance(data[key], str):
                errors.append(f"{current} line {layer.lines.get(key, '?')}: {key} must be a string")
        if name is None:
            name = data["name"] if isinstance(data.get("name"), str) else current.stem
        bindings = data.get("bindings", {})
        if isinstance(bindings, dict):
            _read_bindings(layer, bindings, errors)
        else:
            errors.append(f"{layer.where()}: [bindings] must be a table of id = key(s)")
        layers.insert(0, layer)
        extends = data.get("extends")
        if isinstance(extends, str) and extends:
            current = _locate(extends, relative_to=current.parent)
        elif resolved != default_path.resolve():
            current = default_path
        else:
            current = None
    return name or path.stem, layers


def _overrides_layer(
    overrides: Mapping[str, str | list[str]], source: str, errors: list[str]
) -> _Layer:
    lines: dict[str, int] = {}
    try:
        source_path = Path(source)
        if source_path.is_file():
            lines = toml_key_lines(source_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        pass  # line numbers are a courtesy; the id still names the override
    layer = _Layer(label=source, lines=lines, prefix="keys.")
    _read_bindings(layer, dict(overrides), errors)
    return layer


# --- resolving ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placed:
    keys: list[str]
    layer: _Layer


def _validate_keys(layers: Sequence[_Layer], errors: list[str]) -> dict[int, dict[str, list[str]]]:
    """Canonical keys per layer and id; every bad key in every layer is reported."""
    canonical: dict[int, dict[str, list[str]]] = {}
    for index, layer in enumerate(layers):
        per_id: dict[str, list[str]] = {}
        for binding_id, raw_keys in layer.bindings.items():
            spec = action_spec(binding_id)
            keys: list[str] = []
            for raw in raw_keys:
                try:
                    for key in canonical_keys(raw, typing_context=spec.priority):
                        if key not in keys:
                            keys.append(key)
                except KeyProblem as problem:
                    errors.append(f"{layer.where(binding_id)}: {binding_id}: {problem}")
            per_id[binding_id] = keys
        canonical[index] = per_id
    return canonical


def _resolve(layers: Sequence[_Layer], errors: list[str]) -> dict[str, _Placed]:
    canonical = _validate_keys(layers, errors)
    placed: dict[str, _Placed] = {}
    for index, layer in enumerate(layers):
        for binding_id, keys in canonical[index].items():
            placed[binding_id] = _Placed(keys, layer)
    owners: dict[str, list[str]] = {}
    for spec in ACTIONS:
        entry = placed.get(spec.id)
        if entry is None:
            errors.append(
                f"{layers[-1].label}: no key for {spec.id!r} — add it under [bindings] "
                f'or `extends = "{DEFAULT_KEYMAP}"`'
            )
            continue
        for key in entry.keys:
            owners.setdefault(key, []).append(spec.id)
    order = {id(layer): index for index, layer in enumerate(layers)}

    def position(binding_id: str) -> tuple[int, int]:
        layer = placed[binding_id].layer
        return order[id(layer)], layer.line_of(binding_id) or 0

    for key, ids in owners.items():
        first_id, *others = sorted(ids, key=position)
        first = placed[first_id].layer
        for other_id in others:
            other = placed[other_id].layer
            second = other.where(other_id)
            if other is first and (line := other.line_of(other_id)):
                second = f"line {line}"
            errors.append(
                f"{first.where(first_id)} and {second}: {key!r} is bound to both "
                f"{first_id} and {other_id}"
            )
    return placed


def load_keymap(
    name_or_path: str | None,
    overrides: Mapping[str, str | list[str]] | None = None,
    *,
    overrides_source: str = "config.toml",
) -> ResolvedKeymap:
    """The keymap `name_or_path` (None = default) with `overrides` on top, fully validated.

    `overrides_source` names where the overrides came from (the config file's path, whose `[keys]`
    table is scanned for line numbers). Raises KeymapError listing every problem found.
    """
    errors: list[str] = []
    path = _locate(name_or_path or DEFAULT_KEYMAP, relative_to=None)
    name, layers = _load_chain(path, errors)
    if overrides:
        layers.append(_overrides_layer(overrides, overrides_source, errors))
    placed = _resolve(layers, errors)
    if errors:
        raise KeymapError("\n".join(dict.fromkeys(errors)))
    bindings = {spec.id: ",".join(placed[spec.id].keys) for spec in ACTIONS}
    return ResolvedKeymap(name=name, source=path, bindings=bindings)


def app_bindings(keymap: Mapping[str, str] | None = None, view: str = ANNOTATE) -> list[Binding]:
    """One Binding per action of `view` (the annotator or the console), keyed by `keymap`
    (binding id -> comma-joined keys).

    The keys are put in the Binding itself rather than left to `App.set_keymap`: Textual's keymap
    pass deletes every binding that shares a key with a rebound one, so starting from the real,
    clash-free keys is the only state where a later `set_keymap` behaves. With no keymap, the
    shipped default is used.
    """
    if keymap is None:
        keymap = load_keymap("default").bindings
    actions = actions_for(view)
    missing = [a.id for a in actions if not keymap.get(a.id)]
    if missing:
        raise ValueError(f"keymap has no key for: {', '.join(missing)}")
    return [
        Binding(
            keymap[a.id],
            a.action,
            a.description,
            show=a.show,
            priority=a.priority,
            id=a.id,
        )
        for a in actions
    ]
