"""Scratch: the conformance run against an app with the proposed 400->422 fix."""
import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.models import ErrorBody, Role
from api.server.app import create_app
from api.server.error_handlers import error_response
from api.server.settings import ServerSettings
from api.server.sqlite_repo import SqliteRepository
from tests.fixtures.server import write_wavs
from api.server.ingest import ingest_paths
from tests.security.test_schemathesis_conformance import CHECKS, negative_data_rejection

root = Path(tempfile.mkdtemp())
st_ = ServerSettings(db_path=root / "q.db", data_dir=root / "data")
repo = SqliteRepository(st_.db_path, st_.data_dir)
tok = repo.create_token("ann", Role.ANNOTATOR)
ingest_paths(write_wavs(root / "w", 20), locale="en-US", asr_hints={}, add_clip=repo.add_clip, progress=False)
app = create_app(st_, repo=repo)
orig = app.exception_handlers[StarletteHTTPException]
async def on_http(request, exc):
    if exc.status_code == 400:
        return error_response(422, ErrorBody(reason="malformed_json", message="the body is not valid JSON: not UTF-8", field="body"))
    return await orig(request, exc)
app.add_exception_handler(StarletteHTTPException, on_http)
config = SchemathesisConfig()
config.projects.default.update(headers={"Authorization": f"Bearer {tok}"})
config.projects.default.generation.update(allow_extra_parameters=False)
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)

@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_patched(case):
    checks = CHECKS if case.path != "/v1/annotations/batch" else [c for c in CHECKS if c is not negative_data_rejection]
    case.call_and_validate(checks=checks)
