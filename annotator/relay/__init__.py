"""The audio relay: the TUI runs on a remote host, the sound plays on the annotator's laptop.

`protocol` is the wire format and pairing, `server` and `playback` the laptop side
(`annotator relay`), `link` and `player` the TUI side (`RelayPlayer`, `--audio relay`).
"""
