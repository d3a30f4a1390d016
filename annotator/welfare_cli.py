"""`annotator welfare`: where you stand against the break policy, and your opt-outs.

`annotator welfare --opt-out minor --opt-out explicit` sets the categories the server should not
serve you (clips an earlier annotator flagged so, where clips get several annotations);
`--opt-out none` clears them. Errors and exit codes as `annotator sync`'s."""

from __future__ import annotations

import argparse

from annotator.sync_cli import EXIT_OK, _client_factory, _guarded, out


def welfare(args: argparse.Namespace) -> int:
    return _guarded(lambda: _welfare(args))


def _welfare(args: argparse.Namespace) -> int:
    factory = _client_factory(args)
    wanted: list[str] | None = getattr(args, "opt_out", None)
    with factory() as client:
        if wanted is not None:
            state = client.set_opt_outs([c for c in wanted if c != "none"])
        else:
            state = client.welfare()
    p = state.policy
    out.print(
        f"policy: a {p.break_minutes}-minute break after {p.break_after_flagged} "
        f"escalation-flagged clips or {p.max_continuous_minutes} minutes of work without a pause"
    )
    if state.on_break:
        out.print(f"on a break: new clips in {state.seconds_left} s")
    else:
        out.print(f"escalation-flagged clips since your last break: {state.flagged_since_break}")
    out.print(f"opted out of: {', '.join(state.opt_outs) or 'nothing'}")
    return EXIT_OK
