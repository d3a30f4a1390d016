"""The TUI's screens: the annotate screen and the small modal ones it opens."""
