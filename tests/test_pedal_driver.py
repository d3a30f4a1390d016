"""annotator/pedal_driver.py: the kitty protocol's event types for the play pedal, and the Textual
privates that depend on them. The byte sequences are the kitty spec's (kitty's key_encoding.c
with flags 1|2|8|16: `CSI 21~` F10 pressed, `CSI 21;1:2~` repeated, `CSI 21;1:3~` released,
`CSI 97;;97u` "a" pressed with its text, `CSI 97;1:3u` released)."""

from __future__ import annotations

import inspect

import pytest
from textual import events
from textual._xterm_parser import XTermParser
from textual.driver import Driver
from textual.drivers import linux_driver
from textual.drivers.headless_driver import HeadlessDriver
from textual.drivers.linux_driver import LinuxDriver
from textual.keys import Keys

from annotator.pedal_driver import (
    HoldDriver,
    HoldParser,
    KeyReleaseSupport,
    PlayPedal,
    hold_driver_class,
)

F10, F10_REPEAT, F10_UP = "\x1b[21~", "\x1b[21;1:2~", "\x1b[21;1:3~"


def parsed(parser: XTermParser, data: str) -> list[object]:
    return list(parser.feed(data))


def keys(messages: list[object]) -> list[str]:
    return [m.key if isinstance(m, events.Key) else type(m).__name__ for m in messages]


def holding_parser() -> HoldParser:
    parser = HoldParser(hold_key="f10")
    answer = parsed(parser, "\x1b[?27u")
    assert [type(m) for m in answer] == [KeyReleaseSupport]
    assert isinstance(answer[0], KeyReleaseSupport) and answer[0].releases
    return parser


def test_the_play_pedal_goes_down_and_up_and_its_repeats_are_dropped() -> None:
    parser = holding_parser()
    got = parsed(parser, F10 + F10_REPEAT + F10_REPEAT + F10_UP)
    assert [(type(m), getattr(m, "down", None)) for m in got] == [
        (PlayPedal, True),
        (PlayPedal, False),
    ]


def test_other_keys_type_once_repeat_as_presses_and_their_releases_vanish() -> None:
    parser = holding_parser()
    typed = "\x1b[97;;97u\x1b[97;1:3u" + "\x1b[98;;98u\x1b[98;1:2;98u\x1b[98;1:3u"
    got = parsed(parser, typed + "\x1b[127u\x1b[127;1:2u\x1b[127;1:3u")
    assert keys(got) == ["a", "b", "b", "backspace", "backspace"]
    assert [m.character for m in got if isinstance(m, events.Key)] == [
        "a",
        "b",
        "b",
        "\x7f",
        "\x7f",
    ]
    # Bound keys: F5 (the keyboard's play key), shift+F1 (a tag), ctrl+F5 (a flag) are reported
    # once, on the press; their releases never reach a binding.
    bound = "\x1b[15~\x1b[15;1:3~" + "\x1b[1;2P\x1b[1;2:3P" + "\x1b[15;5~\x1b[15;5:3~"
    assert keys(parsed(parser, bound)) == ["f5", "shift+f1", "ctrl+f5"]


def test_before_the_terminal_answers_the_pedal_is_a_plain_key() -> None:
    parser = HoldParser(hold_key="f10")
    assert keys(parsed(parser, F10)) == ["f10"]  # toggles, as in a terminal without releases
    # A terminal speaking the protocol without event types: the pedal stays a key.
    answer = parsed(parser, "\x1b[?25u")
    assert isinstance(answer[0], KeyReleaseSupport) and not answer[0].releases
    assert keys(parsed(parser, F10)) == ["f10"]


def test_legacy_input_is_textuals_own() -> None:
    parser, plain = holding_parser(), XTermParser()
    legacy = "ab\x1b[A\x1b[1;5D\x1b[15~\x1b[1;2P\x1bOP\x1b[<0;3;4M"
    assert [repr(m) for m in parsed(parser, legacy)] == [repr(m) for m in parsed(plain, legacy)]


def test_an_unparsed_event_type_would_kill_textuals_input_thread() -> None:
    # Why HoldParser reads the sequences first: Textual 8.2 cannot (int("1:3")). If this stops
    # failing, Textual reads event types itself and this module may be simpler.
    with pytest.raises(ValueError, match="1:3"):
        parsed(XTermParser(), F10_UP)


def test_only_textuals_linux_driver_with_the_kitty_protocol_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    driver = hold_driver_class("f10", LinuxDriver)
    assert issubclass(driver, HoldDriver) and driver.hold_key == "f10"  # type: ignore[attr-defined]
    assert hold_driver_class("f10", HeadlessDriver) is HeadlessDriver
    assert hold_driver_class("", LinuxDriver) is LinuxDriver

    class Custom(LinuxDriver):
        pass

    assert hold_driver_class("f10", Custom) is Custom  # TEXTUAL_DRIVER or a subclass: theirs
    monkeypatch.setattr("textual.constants.DISABLE_KITTY_KEY", True)
    assert hold_driver_class("f10", LinuxDriver) is LinuxDriver


def test_the_textual_privates_this_rests_on() -> None:
    """Fails when a Textual upgrade changes what annotator/pedal_driver.py relies on."""
    # The input thread builds its parser from the module global, with the debug flag only.
    run = LinuxDriver.run_input_thread
    assert "XTermParser" in run.__code__.co_names
    assert "XTermParser(self._debug)" in inspect.getsource(run)
    assert linux_driver.XTermParser is XTermParser
    driver = hold_driver_class("f10", LinuxDriver)
    rebound = driver.run_input_thread  # type: ignore[attr-defined]
    assert rebound.__code__ is run.__code__
    parser = rebound.__globals__["XTermParser"](False)
    assert isinstance(parser, HoldParser) and parser.hold_key == "f10"
    # The parser asks `_sequence_to_key_events` about each sequence and drops Keys.Ignore.
    parse = inspect.getsource(XTermParser.parse)
    assert "sequence_to_key_events = self._sequence_to_key_events" in parse
    assert "event.key == Keys.Ignore" in parse
    assert list(inspect.signature(XTermParser._sequence_to_key_events).parameters) == [
        "self",
        "sequence",
        "alt",
    ]
    assert Keys.Ignore.value
    # Textual pushes the kitty flags on start (without event types) and pops them on exit.
    start = inspect.getsource(LinuxDriver.start_application_mode)
    assert 'self.write(f"\\x1b[>{KITTY_PROTOCOL_FLAG}u")' in start
    assert "KITTY_REPORT_EVENT_TYPES" not in start
    assert '"\\x1b[<u"' in inspect.getsource(LinuxDriver.stop_application_mode)
    # Messages from the input thread reach the App as they are.
    assert "self.send_message(message)" in inspect.getsource(Driver.process_message)
