"""Which frames of a render have been sent (client) or received (relay).

PCM is streamed from wherever playback starts, so the covered frames are a handful of intervals
rather than a prefix. The list stays tiny (one interval per seek into unsent audio, merged as
they meet), so plain lists beat anything clever.
"""

from __future__ import annotations


class Ranges:
    """A set of frame indices stored as sorted, disjoint, non-adjacent [start, end) intervals."""

    def __init__(self) -> None:
        self._spans: list[tuple[int, int]] = []

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        merged: list[tuple[int, int]] = []
        placed = False
        for s, e in self._spans:
            if e < start:
                merged.append((s, e))
            elif end < s:
                if not placed:
                    merged.append((start, end))
                    placed = True
                merged.append((s, e))
            else:
                start, end = min(s, start), max(e, end)
        if not placed:
            merged.append((start, end))
        merged.sort()
        self._spans = merged

    def covers(self, start: int, end: int) -> bool:
        if end <= start:
            return True
        return any(s <= start and end <= e for s, e in self._spans)

    def first_gap(self, start: int, limit: int) -> tuple[int, int] | None:
        """The first uncovered [gap_start, gap_end) at or after `start`, below `limit`."""
        pos = start
        for s, e in self._spans:
            if e <= pos:
                continue
            if s > pos:
                break
            pos = e
        if pos >= limit:
            return None
        nxt = next((s for s, _e in self._spans if s > pos), limit)
        return pos, min(nxt, limit)

    @property
    def total(self) -> int:
        return sum(e - s for s, e in self._spans)
