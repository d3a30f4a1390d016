"""annotator: a keyboard-only terminal for annotating voice-assistant recordings."""

__version__ = "0.1.0"
