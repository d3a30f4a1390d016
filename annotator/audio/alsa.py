"""Talk to alsa-lib directly for two things the playback libraries don't offer.

1. alsa-lib prints its errors ("ALSA lib pcm.c:2666:(snd_pcm_open_noupdate) Unknown PCM default")
   straight to stderr, which would scribble over the TUI. We install a handler that keeps the
   last message instead, so the reason can be shown in the status bar and `annotator doctor`.
2. A cheap probe of the default playback PCM (open non-blocking, close): no sound is written,
   so it neither clicks nor disturbs a capture file.

Both backends share the handler: simpleaudio links libasound.so.2 and miniaudio dlopens it, and
the dynamic loader hands everyone the same copy.
"""

from __future__ import annotations

import ctypes
import threading

_PCM_STREAM_PLAYBACK = 0
_PCM_NONBLOCK = 1

# void (*)(const char *file, int line, const char *function, int err, const char *fmt, ...)
# The variadic tail is ignored: reading only the fixed arguments is safe on the Linux ABIs.
_HANDLER_TYPE = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
)

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_lib_error: str | None = None
_handler: object = None  # keeps the ctypes callback alive for the life of the process
_last_message: str | None = None


def _on_alsa_error(
    file: bytes | None, line: int, function: bytes | None, err: int, fmt: bytes | None
) -> None:
    global _last_message
    text = (fmt or b"").decode("utf-8", "replace").replace("%s", "…").replace("%d", "…")
    where = (function or b"").decode("utf-8", "replace")
    _last_message = f"{where}: {text}" if where else text


def _load() -> ctypes.CDLL | None:
    global _lib, _lib_error, _handler
    with _lock:
        if _lib is not None or _lib_error is not None:
            return _lib
        try:
            lib = ctypes.CDLL("libasound.so.2")
        except OSError as exc:
            _lib_error = f"libasound.so.2 cannot be loaded ({exc}); install the ALSA library"
            return None
        lib.snd_strerror.restype = ctypes.c_char_p
        lib.snd_strerror.argtypes = [ctypes.c_int]
        lib.snd_pcm_open.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.snd_pcm_close.argtypes = [ctypes.c_void_p]
        _handler = _HANDLER_TYPE(_on_alsa_error)
        lib.snd_lib_error_set_handler(_handler)
        _lib = lib
        return lib


def silence_alsa_errors() -> None:
    """Route alsa-lib's error prints into `last_alsa_message()` (idempotent, process-wide)."""
    _load()


def last_alsa_message() -> str | None:
    """The last error alsa-lib reported, e.g. "snd_pcm_open_noupdate: Unknown PCM …"."""
    return _last_message


def probe_default_pcm(name: str = "default") -> str | None:
    """None when the playback PCM `name` opens; otherwise what ALSA said, in one line."""
    lib = _load()
    if lib is None:
        return _lib_error
    handle = ctypes.c_void_p()
    rc = lib.snd_pcm_open(ctypes.byref(handle), name.encode(), _PCM_STREAM_PLAYBACK, _PCM_NONBLOCK)
    if rc < 0:
        reason = (lib.snd_strerror(rc) or b"unknown error").decode("utf-8", "replace")
        detail = _last_message
        return f"ALSA cannot open PCM {name!r}: {reason}" + (f" ({detail})" if detail else "")
    lib.snd_pcm_close(handle)
    return None
