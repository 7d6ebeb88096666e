"""Issue 24 (round 3) without Redis: log and terminal injection, secrets in tracebacks,
bad option values, every failure of a race acted on."""

from __future__ import annotations

import logging

import pytest

import failover_core as fc
from failover_core.telemetry.printable import printable
from tests.core.fakes import FakeEntry, HTTPError

# -- 7. model keys are escaped wherever a person reads them ---------------------------------


@pytest.mark.parametrize(
    "key",
    ["m/a\nfailover: forged line model=x", "m/\x1b[2J\x1b[31mred", "m/\r\x07bell", "m/\u2028x"],
)
def test_a_model_key_cannot_forge_a_log_line_or_send_terminal_codes(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    chain = fc.FailoverChain(
        [FakeEntry(key, [HTTPError(401)]), FakeEntry("m/b")],
        fc.FailoverPolicy.build(),
        fc.HealthRegistry(),
    )
    with caplog.at_level(logging.WARNING, logger="llm_failover"):
        chain.invoke(lambda e: e.call())
    [line] = [r.getMessage() for r in caplog.records]
    assert line.isprintable(), line
    assert printable(key) in line


def test_printable_leaves_ordinary_keys_alone_and_keeps_distinct_keys_distinct() -> None:
    assert printable("openai/gpt-4o") == "openai/gpt-4o"
    assert printable("azure/é-ü 1") == "azure/é-ü 1"
    assert printable("a\nb") != printable("a\\nb")
