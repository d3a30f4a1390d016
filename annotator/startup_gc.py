"""The cyclic garbage collector held off while the TUI starts, then frozen.

Start-up allocates a few hundred thousand long-lived objects (classes, pydantic validators,
Textual's styles) and almost no garbage: the collector ran ~200 times for ~90 ms of the cold start
and freed under a thousand objects. So `annotator` turns it off before its imports (`hold`, in
`annotator.cli`) and back on once the first screen is drawn (`release`, in the App), after
`gc.freeze()` has set everything alive at that point aside: the collections of the shift do not
walk the start-up's objects again. Reference counting frees memory as usual throughout.
"""

from __future__ import annotations

import gc

_held = False


def hold() -> None:
    """Turn the collector off until `release` (a no-op if it is already off)."""
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def release() -> None:
    """Freeze what start-up left alive and turn the collector back on, if `hold` turned it off."""
    global _held
    if _held:
        _held = False
        gc.freeze()
        gc.enable()
