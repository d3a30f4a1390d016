"""The reference queue server (FastAPI). Importing it builds the request models first
(`api.models.build_request_models`), before any route module declares a body."""

from api.models import build_request_models

build_request_models()
