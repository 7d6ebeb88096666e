"""Issue 24 (round 3) without Redis: log and terminal injection, secrets in tracebacks,
bad option values, every failure of a race acted on."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

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


# -- 6. bounded bookkeeping: the benched gauge ----------------------------------------------


def test_the_benched_gauge_is_capped_reports_own_models_first_and_says_so(
    reader: Any, registry: fc.HealthRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.core.test_otel import _points

    for n in range(10_000):  # other processes' records in a shared store
        registry.bench(f"foreign/m{n:05d}", timedelta(minutes=5))
    chain = fc.FailoverChain(
        [FakeEntry("zz/own", [HTTPError(401)]), FakeEntry("zz/b")],
        fc.FailoverPolicy.build(),
        registry,
    )
    chain.invoke(lambda e: e.call())
    with caplog.at_level(logging.WARNING, logger="llm_failover"):
        for _ in range(3):
            points = _points(reader, "llm_failover.benched")
    assert len(points) <= 101, len(points)
    models = {a["llm_failover.model"]: v for a, v in points}
    assert models["zz/own"] == 1, "this process's own model is reported"
    assert models["_other"] == 10_001 - 100
    assert sum(1 for v in models.values() if v) == 101
    said = [r.getMessage() for r in caplog.records if "max_benched_series" in r.getMessage()]
    assert len(said) == 1


# -- 8. secrets: repr is as clean as str ----------------------------------------------------

PROMPT = "customer 4242 asks about invoice " + "Q" * 3
KEY = "sk-" + "live" + "0123456789abcdef"


def test_the_repr_of_all_models_failed_is_as_clean_as_its_str() -> None:
    echo = HTTPError(400, message=f"bad request for {PROMPT!r}")
    auth = HTTPError(401, message=f"Incorrect API key provided: {KEY}")
    chain = fc.FailoverChain(
        [FakeEntry("a/1", [auth]), FakeEntry("b/2", [echo])],
        fc.FailoverPolicy.build(),
        fc.HealthRegistry(),
    )
    with pytest.raises(fc.AllModelsFailedError) as caught:
        chain.invoke(lambda e: e.call())
    error = caught.value
    for text in (str(error), repr(error), repr([error]), f"{error!r}"):
        assert PROMPT not in text and KEY not in text, text
    assert "a/1" in repr(error) and "2 causes" in repr(error)
    assert error.exceptions == (auth, echo), "the causes are still there, for code"
