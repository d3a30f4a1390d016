"""What can go wrong making a draft (no numpy here: `status` imports this at server start)."""

from __future__ import annotations


class AsrUnavailable(Exception):
    """The engine cannot run here (extra not installed, model missing or tampered); the message
    names the problem and the fix."""


class ClipNotTranscribable(Exception):
    """This one clip cannot be transcribed (undecodable for the engine, engine error); the clip
    keeps no draft and the message says why."""
