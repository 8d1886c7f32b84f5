"""The one progress protocol: events from the library, drawn by one display."""

from __future__ import annotations

import io

from odernn.progress import Display, Event, ignore, reporter


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


EVENTS = [Event("simulate x", "block", 5, 10, "5 of 10"),
          Event("simulate x", "validated", 10, 10, "a line to keep", log=True),
          Event("simulate x", "done", 10, 10, "finished")]


def test_a_log_gets_only_the_lines_worth_keeping_without_escape_codes():
    out = io.StringIO()
    display = Display(out)
    for event in EVENTS:
        display(event)
    assert out.getvalue() == "simulate x: a line to keep\n"


def test_a_terminal_gets_bars_that_end_with_their_task_and_keeps_the_logged_lines():
    out = Terminal()
    display = Display(out)
    for event in EVENTS[:2]:
        display(event)
    assert display._live is not None  # drawing while the task runs
    display(EVENTS[2])
    assert display._live is None  # the last task's "done" stops the display
    assert "a line to keep" in out.getvalue()


def test_reporter_normalises_what_callers_pass():
    seen = []
    assert reporter(seen.append) == seen.append
    assert reporter(False) is ignore and reporter(None) is ignore
    assert isinstance(reporter(True), Display)
