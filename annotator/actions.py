"""Every user action in one registry: its stable binding id, the action string and its help text.

The keys live in keymaps/*.toml, not here: the App builds its bindings from a resolved keymap, and
`App.set_keymap` can rebind any of them at run time because each Binding carries its id.
Flag and tag actions are generated from the default taxonomy so a new flag gets an id for free.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.taxonomy import load_default_taxonomy


@dataclass(frozen=True, slots=True)
class ActionSpec:
    id: str
    """Stable binding id used in keymaps and config.toml, e.g. "player.toggle"."""
    action: str
    """Textual action string; the main screen implements `action_<name>`."""
    description: str
    group: str
    """Heading in the help overlay."""
    priority: bool
    """Fire even while a TextArea/Input has focus (the annotator is nearly always typing)."""
    show: bool
    """Shown in the footer."""
    views: frozenset[str] = frozenset({"annotate"})
    """Which apps bind it: "annotate" (the annotator) and/or "supervise" (the console)."""


ANNOTATE, SUPERVISE = "annotate", "supervise"
#: The annotator's actions the supervisor's console binds too, with the same keys: the player's
#: (a supervisor hears a clip as an annotator does), help, the palette, the relay, quit.
_SHARED = ("player.", "app.help", "app.command-palette", "app.relay-pair", "app.quit")


def _fixed_actions() -> list[ActionSpec]:
    def spec(id_: str, action: str, description: str, group: str, *, show: bool) -> ActionSpec:
        views = frozenset({ANNOTATE, SUPERVISE} if id_.startswith(_SHARED) else {ANNOTATE})
        return ActionSpec(id_, action, description, group, priority=True, show=show, views=views)

    return [
        spec("player.toggle", "player_toggle", "Play / pause", "Player", show=True),
        spec("player.replay", "player_replay", "Replay from the start", "Player", show=True),
        spec("player.back", "player_back", "Seek back", "Player", show=False),
        spec("player.forward", "player_forward", "Seek forward", "Player", show=False),
        spec("player.slower", "player_slower", "Slower (pitch kept)", "Player", show=False),
        spec("player.faster", "player_faster", "Faster (pitch kept)", "Player", show=False),
        spec("player.louder", "player_louder", "Louder (+6 dB, never clips)", "Player", show=False),
        spec("player.quieter", "player_quieter", "Quieter (−6 dB)", "Player", show=False),
        spec("form.submit", "form_submit", "Submit and next", "Annotation", show=True),
        spec("form.skip", "form_skip", "Skip with a reason", "Annotation", show=True),
        spec("form.undo", "form_undo", "Undo last submission", "Annotation", show=False),
        spec(
            "form.history",
            "show_history",
            "Reopen an earlier submission",
            "Annotation",
            show=False,
        ),
        spec(
            "intent.refresh-digits",
            "refresh_digits",
            "Most used intents to 4–9",
            "Annotation",
            show=False,
        ),
        spec(
            "form.clear-transcript",
            "form_clear_transcript",
            "Clear the transcript",
            "Annotation",
            show=False,
        ),
        spec("focus.transcript", "focus_transcript", "Go to transcript", "Focus", show=False),
        spec("focus.intent", "focus_intent", "Go to intent", "Focus", show=False),
        spec("focus.flags", "focus_flags", "Go to flags", "Focus", show=False),
        spec("focus.note", "focus_note", "Go to note", "Focus", show=False),
        spec("app.help", "show_help", "Keys", "App", show=True),
        spec("app.command-palette", "command_palette", "Commands", "App", show=False),
        spec("app.go-offline", "go_offline", "Go offline", "App", show=False),
        spec("app.conflicts", "show_conflicts", "Show conflicts", "App", show=False),
        spec("app.opt-outs", "show_opt_outs", "Opt out of categories", "App", show=False),
        spec("app.relay-pair", "relay_pair", "Pair with the audio relay again", "App", show=False),
        spec("app.quit", "quit", "Quit", "App", show=False),
    ]


def _taxonomy_actions() -> list[ActionSpec]:
    taxonomy = load_default_taxonomy()
    specs: list[ActionSpec] = []
    for flag in taxonomy.flags:
        label = flag.id.replace("_", " ")
        specs.append(
            ActionSpec(
                id=f"flag.{flag.id.replace('_', '-')}",
                action=f"toggle_flag({flag.id!r})",
                description=f"Flag: {label}",
                group="Flags",
                priority=True,
                show=False,
            )
        )
    for tag in taxonomy.tags:
        name = tag.tag.strip("[]")
        specs.append(
            ActionSpec(
                id=f"tag.{name.replace('_', '-')}",
                action=f"insert_tag({tag.tag!r})",
                description=f"Insert {tag.tag}",
                group="Tags",
                priority=True,
                show=False,
            )
        )
    return specs


def _console_actions() -> list[ActionSpec]:
    """The supervisor's console (`annotator supervise`): nothing is typed there but the
    resolution note (in its own dialog), so plain letters serve."""

    def spec(id_: str, action: str, description: str, group: str, *, show: bool) -> ActionSpec:
        views = frozenset({SUPERVISE})
        return ActionSpec(id_, action, description, group, priority=False, show=show, views=views)

    return [
        spec("escalation.ack", "ack", "Acknowledge", "Escalations", show=True),
        spec("escalation.resolve", "resolve", "Resolve (outcome + note)", "Escalations", show=True),
        spec("escalation.reopen", "reopen", "Reopen", "Escalations", show=True),
        spec("escalation.filter", "cycle_filter", "Filter by state", "Escalations", show=True),
        spec("console.view", "switch_view", "Escalations / queue view", "Console", show=True),
        spec("console.refresh", "refresh", "Refresh now", "Console", show=False),
        spec("console.people", "people", "People and tokens (admins)", "Console", show=False),
        spec("people.revoke", "revoke", "Revoke a token (asks first)", "People", show=False),
        spec("console.quality", "quality", "Quality view (report, charts)", "Console", show=True),
    ]


ACTIONS: tuple[ActionSpec, ...] = (*_fixed_actions(), *_taxonomy_actions(), *_console_actions())
ACTION_IDS: frozenset[str] = frozenset(a.id for a in ACTIONS)
_BY_ID: dict[str, ActionSpec] = {a.id: a for a in ACTIONS}


def actions_for(view: str) -> tuple[ActionSpec, ...]:
    """The actions one app binds, in registry order (its bindings, help and palette)."""
    return tuple(a for a in ACTIONS if view in a.views)


def action_spec(binding_id: str) -> ActionSpec:
    """The spec for `binding_id`; KeyError when there is none."""
    return _BY_ID[binding_id]
