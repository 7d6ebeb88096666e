"""The main job: the offline demo tells the incident's story, in a log and in a terminal."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import failover_core as fc

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "outage_demo.py"


def test_the_log_tells_the_incident_story_without_wrapping() -> None:
    # --pace 0: as fast as it goes. The health registry runs on the demo's own clock, so
    # the story is the one a person sees at the default pace.
    out = subprocess.run(
        [sys.executable, str(DEMO), "--pace", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "COLUMNS": "80"},
    ).stdout
    # Loading says what it loads and how long each part took, before the first phase.
    loading = out[: out.index("--- phase 1/7")]
    for part in ("LangChain", "LlamaIndex", "llm-failover"):
        assert re.search(rf"^Loading {part}\.\.\. \d+\.\d s$", loading, re.M), part
    assert re.search(
        r"^Building the chains and warming up the clients\.\.\. \d+\.\d s$", loading, re.M
    )
    served = dict(re.findall(r"^#(\d+) +\w+ +(\S+)", out, re.MULTILINE))
    assert len(served) == 56
    assert served["1"] == served["2"] == "gpt-4o-mini"
    assert re.search(r"^#7 +LangChain +gpt-4o-mini +after 2 failed calls", out, re.M), (
        "the 429 burst is retried on the same model"
    )
    assert "#13 gpt-4o-mini 400 request_specific -> not benched -> claude-haiku-4-5" in out
    assert served["14"] == "gpt-4o-mini", "an over-long prompt benches nobody"
    assert "#17 gpt-4o-mini 503 transient -> benched 8 s -> claude-haiku-4-5" in out
    assert served["18"] == "claude-haiku-4-5", "LlamaIndex skips the model LangChain benched"
    assert "#25 claude-haiku-4-5 401 auth_dead -> benched 8 s -> gpt-4.1-nano" in out
    assert served["31"] == "gpt-4o-mini", "back after its bench and one probe"
    # A hang costs one deadline per request, fails over at once, and 3 of them bench it.
    assert re.search(r"^#35 +LangChain +gpt-4.1-nano +after 1 failed call +1\d{3} ms", out, re.M)
    assert "#35 gpt-4o-mini no answer in 1 s (timeout) -> not benched -> gpt-4.1-nano" in out
    assert "#37 gpt-4o-mini no answer in 1 s (timeout) -> benched 8 s -> gpt-4.1-nano" in out
    assert re.search(r"^#38 +LlamaIndex +gpt-4.1-nano +first try", out, re.M)
    assert served["56"] == "gpt-4o-mini", "back again once the hang is over"
    # LlamaIndex answers show the question, not its prompt template's preamble.
    assert "Context information is" not in out
    assert re.search(r"^#2 .*you said: question 2: what is failover\?", out, re.M)
    # No wrapping at 80 columns: a long line stays one line.
    assert any(len(line) > 100 for line in out.splitlines())
    assert "--- phase 4/7: gpt-4o-mini is down: 503 on every call (3 tries, then benched" in out
    assert "#31 gpt-4o-mini probed: it answered, back for every request" in out
    assert "failed calls 11, none seen by a caller: gpt-4o-mini 9, claude-haiku-4-5 2" in out


# -- a real terminal ----------------------------------------------------------------------


@pytest.fixture
def terminal() -> Iterator[Callable[[], list[str]]]:
    """The demo running in a detached tmux session of 80x24; yields a screen reader."""
    if shutil.which("tmux") is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is missing: .ci/run installs it")
        pytest.skip("tmux is not installed here (.ci/run installs it in CI)")
    socket = f"llm-failover-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "xterm-256color"}
    env.pop("TMUX", None)
    command = f"{sys.executable} {DEMO}; echo DEMO-EXIT $?; sleep 600"
    tmux = ["tmux", "-L", socket, "-f", "/dev/null", "-u"]
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", "80", "-y", "24", "-s", "demo", command],
        check=True,
        env=env,
        cwd=ROOT,
    )

    def screen() -> list[str]:
        shot = subprocess.run(
            [*tmux, "capture-pane", "-p", "-t", "demo"],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
        return shot.stdout.rstrip("\n").splitlines()  # the rows down to the last non-empty one

    try:
        yield screen
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, env=env)


def wait_for(screen: Callable[[], list[str]], seen: Callable[[list[str]], bool]) -> list[str]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        lines = screen()
        if seen(lines):
            return lines
        time.sleep(0.1)
    raise AssertionError("never shown:\n" + "\n".join(screen()))


def index_of(lines: list[str], prefix: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(prefix))


@pytest.mark.timeout(240)
def test_an_80x24_terminal_shows_phase_servers_benches_and_the_outage_at_the_end(
    terminal: Callable[[], list[str]],
) -> None:
    # During the outage: the phase, who serves, what is benched, why and for how long.
    lines = wait_for(
        terminal,
        lambda s: (
            any(x.startswith("phase 4/7") for x in s)
            and any(x.startswith("#18 LlamaIndex") for x in s)
        ),
    )
    top = index_of(lines, "phase 4/7: gpt-4o-mini is down: 503 on every call")
    assert lines[top + 1].startswith("  watch: 3 tries, then benched: every"), "no wrapped lines"
    assert re.match(r"gpt-4o-mini +█+▓█+x█+x·", lines[top + 3]), "who served each request"
    bench = lines[index_of(lines, "benched at t=") + 1]
    assert re.match(r"gpt-4o-mini +503 transient, 3 tries failed +\d\.\d s left, 6 failed", bench)
    assert "#17 gpt-4o-mini 503 transient -> benched 8 s -> claude-haiku-4-5" in lines
    assert re.match(r"#18 LlamaIndex claude-haiku-4-5 +first try", lines[-1]), "all of it fits"

    # At the end: the whole run's timeline, the outage still in it, and the summary.
    lines = wait_for(terminal, lambda s: "DEMO-EXIT 0" in s)
    top = index_of(lines, "llm-failover demo: 56 requests, every one answered")
    primary, backup = lines[top + 2], lines[top + 3]
    assert re.fullmatch(r"gpt-4o-mini +█+▓█+x█+x·+◆█+xxx·+◆█+", primary), "503s, then the hang"
    assert re.match(r"claude-haiku-4-5 +█ +█+x·", backup)
    assert lines[index_of(lines, "served by") + 1].startswith("failed calls 11, none seen")
    text = "\n".join(lines)
    assert re.search(r"^gpt-4o-mini +#17-#30 +8 s +503 transient.*; back at #31 ◆$", text, re.M)
    assert re.search(
        r"^claude-haiku-4-5 #25-#38 +8 s +401 auth_dead.*; probe #39 failed$", text, re.M
    )
    assert re.search(r"^gpt-4o-mini +#37-#50 +8 s +hung: 3 timeouts; back at #51 ◆$", text, re.M)
    assert "unused since" not in text


# -- its numbers come from the events, and every line fits 80 columns ------------------


def test_every_number_shown_is_the_registrys_and_every_line_fits_80_columns() -> None:
    spec = importlib.util.spec_from_file_location("outage_demo", DEMO)
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = demo
    try:
        spec.loader.exec_module(demo)
        seen: list[tuple[str, float, float]] = []  # (model, seconds left, bench length)
        widths: list[str] = []

        def live(board: Any) -> None:
            widths.extend(text for text, _ in demo.frame_lines(board))
            assert len(demo.frame_lines(board)) <= 22
            for b in fc.list_benched():
                model = demo.KEYS[b.model]
                last = next(x for x in reversed(board.benches) if x.model == model)
                seen.append((model, b.until.timestamp() - board.clock, last.seconds))

        board = demo.run(0, live, lambda line: None)
        widths.extend(demo.summary(board, 1.0))
    finally:
        sys.modules.pop(spec.name, None)
    too_wide = [line for line in widths if len(line) > 79]
    assert too_wide == [], "clipped at 80 columns"
    # The panel's time left never exceeds what the decision line said the bench lasts.
    assert seen and all(left <= length + 1e-6 for _, left, length in seen)
    # A failed probe's bench is longer than the base cooldown, and the line says so.
    by_request = {b.at: b for b in board.benches}
    grown = by_request[39]
    assert grown.model == "claude-haiku-4-5" and grown.seconds > by_request[25].seconds
    assert any(
        d.startswith("#39 claude-haiku-4-5 probe: 401") and f"benched {grown.seconds:.0f} s" in d
        for d in board.decisions
    )
    assert max(left for m, left, _ in seen if m == "claude-haiku-4-5") > by_request[25].seconds
    assert board.probes == {31, 51}, "the probes that brought gpt-4o-mini back"
