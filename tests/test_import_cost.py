"""Cold start: importing the API models must not build their validators (pydantic builds each one
on first use instead: `defer_build` on `api.models._In` and `_Out`; the server builds the request
models at its import); the TUI imports every model and uses a few before its first clip plays.
Nor must it import what only a key opens."""

from __future__ import annotations

import ast
import os
import subprocess
import sys


def test_api_models_are_built_on_first_use_not_at_import() -> None:
    code = (
        "import api.models as m, api.welfare\n"
        "def subs(c):\n"
        "    for s in c.__subclasses__():\n"
        "        yield s\n"
        "        yield from subs(s)\n"
        "models = [*subs(m._In), *subs(m._Out)]\n"
        "assert len(list(subs(m._In))) > 5\n"
        "built = [c.__name__ for c in models if c.__pydantic_complete__]\n"
        "assert not built, built\n"
        "print(len(models))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 20


def test_the_server_builds_request_models_before_its_routes() -> None:
    """Deferred request models would make FastAPI build its body adapters outside its own filter
    of pydantic's UnsupportedFieldAttributeWarning (`api.models.build_request_models`): no
    warning from pydantic may reach the server's log."""
    code = (
        "import tempfile, pathlib, warnings\n"
        "warnings.filterwarnings('error', module='pydantic')\n"
        "from api.server.app import create_app\n"
        "from api.server.settings import ServerSettings\n"
        "import api.models as m, api.quality_models as q\n"
        "d = pathlib.Path(tempfile.mkdtemp())\n"
        "app = create_app(ServerSettings(db_path=d / 'q.db', data_dir=d / 'data'))\n"
        "assert app.openapi()['paths']\n"
        "assert m.AnnotationIn.__pydantic_complete__ and q.FinalIn.__pydantic_complete__\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]


#: What the TUI imports before its first clip plays (annotator/launch.py's path: the services,
#: the App and its first screen) must not pull these in: each is needed only when a person asks
#: for it (a relay, "go offline", a screen opened by a key), and together they cost tens of
#: milliseconds of the cold start (issue 9's "cold start ≤ import floor + 0.3 s").
NOT_BEFORE_FIRST_CLIP = (
    "annotator.relay.protocol",
    "annotator.relay.player",
    "annotator.relay.link",
    "stamina",
    "tenacity",
    "annotator.screens.help",
    "annotator.screens.skip",
    "annotator.screens.wellbeing",
    "annotator.screens.history",
)


def test_the_first_clip_does_not_wait_for_what_only_a_key_opens() -> None:
    code = (
        "import sys\n"
        "spawned = []\n"
        "sys.addaudithook(lambda e, a: spawned.append(a[0]) if e == 'subprocess.Popen' else None)\n"
        "from annotator.hardening import harden_process\n"
        "harden_process()\n"
        "import annotator.launch, annotator.services, annotator.app, annotator.sync\n"
        "import annotator.workbench.checkout\n"
        "from annotator.audio.backends import open_player\n"
        # past the relay check (no relay configured) to a muted player: no device is opened
        "player, why = open_player('no-such-backend')\n"
        "assert 'unknown audio backend' in why, why\n"
        f"loaded = [m for m in {NOT_BEFORE_FIRST_CLIP!r} if m in sys.modules]\n"
        "print(repr((loaded, spawned)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("ANNOTATOR_RELAY",)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, env=env
    )
    assert done.returncode == 0, done.stderr
    loaded, spawned = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert loaded == [], f"imported before the first clip: {loaded}"
    # harden_process found prctl without `ldconfig -p` (ctypes.util.find_library forks it)
    assert spawned == [], f"start-up ran {spawned}"


def test_client_commands_start_lean() -> None:
    """numpy's OpenBLAS starts a thread per core at import unless told otherwise: ~50 ms of CPU on
    the TUI's cold start for linear algebra the client never does (not for the server: ASR); nor
    need pydantic look for plugins in every installed package's metadata. And the TUI starts with
    the cyclic collector held (annotator/startup_gc.py; the App releases it,
    tests/tui/test_startup_gc.py)."""
    code = (
        "import gc, os, sys, annotator.cli as c\n"
        "env = lambda name: os.environ.get(name)\n"
        "show = lambda args: print(env('OPENBLAS_NUM_THREADS'), env('PYDANTIC_DISABLE_PLUGINS'),"
        " gc.isenabled()) or 0\n"
        "c._resolve = lambda spec: show\n"
        "sys.exit(c.main(sys.argv[1:]))\n"
    )

    def started(*argv: str, **env: str) -> str:
        lean = ("OPENBLAS_NUM_THREADS", "PYDANTIC_DISABLE_PLUGINS")
        base = {k: v for k, v in os.environ.items() if k not in lean}
        done = subprocess.run(
            [sys.executable, "-c", code, *argv],
            capture_output=True,
            text=True,
            check=False,
            env={**base, **env},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert started() == "1 __all__ False"  # the TUI: one BLAS thread, collector held
    assert started("sync") == "1 __all__ True"
    assert started(OPENBLAS_NUM_THREADS="3") == "3 __all__ False"  # a person's setting wins
    assert started("serve") == "None None True"
    assert started("demo") == "None None False"  # its server inherits the environment
