"""Small text formatters shared by the widgets (pure functions, no Textual)."""

from __future__ import annotations

import math


def clock(seconds: float) -> str:
    """`m:ss.t`, truncated to the tenth (a playhead never shows a time it has not reached).

    >>> clock(0), clock(7.49), clock(83.26)
    ('0:00.0', '0:07.4', '1:23.2')
    """
    if not math.isfinite(seconds) or seconds < 0:
        seconds = 0.0
    tenths = int(seconds * 10 + 1e-6)
    minutes, tenths = divmod(tenths, 600)
    return f"{minutes}:{tenths // 10:02d}.{tenths % 10}"


def speed(value: float) -> str:
    """A playback speed as people say it: `1×`, `1.25×`, `0.5×`.

    >>> speed(1.0), speed(1.25), speed(0.5)
    ('1×', '1.25×', '0.5×')
    """
    return f"{value:.2f}".rstrip("0").rstrip(".") + "×"
