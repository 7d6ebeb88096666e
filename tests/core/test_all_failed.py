"""When every model fails, the error says which were skipped because they were benched."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone

import failover_core as fc
from failover_core import GiveUp
from tests.conftest import T0
from tests.core.fakes import HTTPError


def give_up(registry: fc.HealthRegistry, error: Exception) -> fc.AllModelsFailedError:
    policy = fc.FailoverPolicy.build(max_retries=1)
    flow = fc.FailoverFlow(("openai/gpt-4o-mini", "anthropic/claude"), policy, registry)
    attempt = flow.start()
    assert attempt.key == "anthropic/claude", "the benched primary is not tried"
    command = flow.failed(error)
    assert isinstance(command, GiveUp)
    return command.error


def test_the_error_names_the_benched_model_it_skipped_and_until_when(
    registry: fc.HealthRegistry,
) -> None:
    registry.bench_now("openai/gpt-4o-mini", timedelta(minutes=5))
    error = give_up(registry, HTTPError(401))
    until = datetime.fromtimestamp(T0 + 300, timezone.utc)
    assert error.skipped == (("openai/gpt-4o-mini", until),)
    assert error.models == ("anthropic/claude",)
    assert error.message == (
        "1 model tried and failed: anthropic/claude (auth_dead, 401 HTTPError); "
        f"1 skipped because benched: openai/gpt-4o-mini (until {until:%H:%M:%S} UTC)"
    )


def test_the_skipped_models_survive_pickling_and_split(registry: fc.HealthRegistry) -> None:
    registry.bench_now("openai/gpt-4o-mini", timedelta(minutes=5))
    error = give_up(registry, HTTPError(401))
    assert pickle.loads(pickle.dumps(error)).skipped == error.skipped
    kept, _ = error.split(HTTPError)
    assert isinstance(kept, fc.AllModelsFailedError)
    assert kept.skipped == error.skipped


def test_nothing_skipped_keeps_the_plain_message(registry: fc.HealthRegistry) -> None:
    registry.bench_now("openai/gpt-4o-mini", timedelta(minutes=5))
    registry.bench_now("anthropic/claude", timedelta(minutes=5))
    policy = fc.FailoverPolicy.build(max_retries=1)
    flow = fc.FailoverFlow(("openai/gpt-4o-mini", "anthropic/claude"), policy, registry)
    flow.start()  # every entry benched: all are tried anyway, none is skipped
    flow.failed(HTTPError(401))
    command = flow.failed(HTTPError(401))
    assert isinstance(command, GiveUp)
    assert command.error.skipped == ()
    assert command.error.message.startswith("all 2 models in chain failed: openai/gpt-4o-mini")
