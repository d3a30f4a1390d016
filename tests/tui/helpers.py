"""Shared helpers for the TUI tests: build the real services, drive keys, wait for states."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from textual.pilot import Pilot

from annotator.app import AnnotatorApp, Services
from annotator.launch import build_services
from annotator.screens.annotate import AnnotateScreen
from tests.fixtures.server import LiveServer

#: Pilot key names for characters that are not their own key name.
_KEY_NAMES = {" ": "space", "'": "apostrophe", ",": "comma", ".": "full_stop", "?": "question_mark"}


def client_args(server: LiveServer, **extra: Any) -> argparse.Namespace:
    values: dict[str, Any] = {
        "server": server.url,
        "token": server.annotator_token,
        "ca_bundle": None,
        "insecure": False,
        "config": None,
        "audio": "none",
        "keymap": None,
    }
    values.update(extra)
    return argparse.Namespace(**values)


def services_for(server: LiveServer, **extra: Any) -> Services:
    return build_services(client_args(server, **extra))


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*(_KEY_NAMES.get(ch, ch) for ch in text))


async def wait_until(
    pilot: Pilot[Any], predicate: Callable[[], bool], timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.02)
    raise AssertionError("condition not met in time")


def annotate_screen(app: AnnotatorApp) -> AnnotateScreen:
    screen = app._annotate_screen()
    assert screen is not None
    return screen


async def wait_for_clip(pilot: Pilot[Any], app: AnnotatorApp) -> AnnotateScreen:
    await wait_until(pilot, lambda: app._annotate_screen() is not None)
    screen = annotate_screen(app)
    await wait_until(pilot, lambda: screen.current is not None)
    return screen


def export(server: LiveServer) -> list[dict[str, Any]]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    ) as c:
        resp = c.get("/v1/export")
        resp.raise_for_status()
        return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


async def wait_for_export(
    server: LiveServer, count: int, timeout: float = 15.0
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = await asyncio.to_thread(export, server)
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.1)
    raise AssertionError(f"expected {count} annotations on the server, found {len(rows)}")
