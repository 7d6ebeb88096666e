"""Resumed streams in the core: the flow's decision and the stream drivers' continuation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import timedelta
from typing import Any

import anthropic
import pytest

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from failover_core.telemetry import listeners as _telemetry
from tests.conftest import FakeClock
from tests.core.fakes import FakeStreamEntry, HTTPError

Opener = Callable[[], Iterator[str]]


def chain_of(
    entries: Sequence[FakeStreamEntry],
    clock: FakeClock,
    registry: fc.HealthRegistry,
    **options: Any,
) -> tuple[fc.FailoverChain[FakeStreamEntry], list[fc.FailoverEvent]]:
    events: list[fc.FailoverEvent] = []
    options.setdefault("observer", events.append)
    options.setdefault("backoff", lambda n: 0.0)
    options.setdefault("resume_streams", True)
    policy = fc.FailoverPolicy.build(**options)
    chain = fc.FailoverChain(entries, policy, registry, sleep=clock.sleep, asleep=clock.asleep)
    return chain, events


class Continuations:
    """An adapter's continuation: entries named ``able`` continue a text with their chunks."""

    def __init__(self, *able: str) -> None:
        self.able = set(able)
        self.asked: list[tuple[str, str]] = []  # (entry, text) of each continuation opened

    def open(self, entry: FakeStreamEntry, text: str) -> Opener | None:
        if entry.key not in self.able:
            return None

        def opened() -> Iterator[str]:
            self.asked.append((entry.key, text))
            return entry.stream()

        return opened

    def aopen(self, entry: FakeStreamEntry, text: str) -> Callable[[], AsyncIterator[str]] | None:
        if entry.key not in self.able:
            return None

        def opened() -> AsyncIterator[str]:
            self.asked.append((entry.key, text))
            return entry.astream()

        return opened


def broken(key: str = "a/1", error: Exception | None = None) -> FakeStreamEntry:
    return FakeStreamEntry(
        key, chunks=["Hel", "lo", " wor", "ld"], fail_after=2, fail_with=error or HTTPError(503)
    )


def plain(chunk: str) -> bool:
    return not chunk.startswith("<tool")


def test_a_broken_stream_goes_on_on_the_next_able_model(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, b, c = broken(), FakeStreamEntry("b/2"), FakeStreamEntry("c/3", chunks=[" wor", "ld"])
    chain, events = chain_of([a, b, c], clock, registry)
    cont = Continuations("c/3")
    out = list(chain.stream(lambda e: e.stream(), str, resume=cont.open, plain=plain))
    assert "".join(chunk for chunk, _ in out) == "Hello world", "nothing repeated, nothing lost"
    assert cont.asked == [("c/3", "Hello")], "b/2 cannot continue: skipped"
    assert b.opens == 0
    assert [served.model for _, served in out] == ["a/1", "a/1", "c/3", "c/3"]
    assert out[2][1] == fc.Served("c/3", 2, failed_attempts=1, resumed_from="a/1", resumed_after=5)
    assert out[2][1].as_dict()["resumed_from"] == "a/1"
    [event] = events
    assert (event.model, event.next_model, event.reason) == ("a/1", "c/3", "stream_resumed")
    assert isinstance(event.error, fc.ResumeNotice) and event.error.characters == 5
    assert event.status == 503, "the event's status is the failure's"
    assert registry.store.get("a/1").strikes == 1, "one strike, as interrupted"  # type: ignore[union-attr]
    assert registry.store.get("c/3") is None


async def test_astream_resumes_the_same_way(clock: FakeClock, registry: fc.HealthRegistry) -> None:
    a, c = broken(), FakeStreamEntry("c/3", chunks=[" wor", "ld"])
    chain, events = chain_of([a, c], clock, registry)
    cont = Continuations("c/3")
    out = [
        pair
        async for pair in chain.astream(lambda e: e.astream(), str, resume=cont.aopen, plain=plain)
    ]
    assert "".join(chunk for chunk, _ in out) == "Hello world"
    assert out[-1][1].resumed_from == "a/1" and out[-1][1].model == "c/3"
    assert [e.reason for e in events] == ["stream_resumed"]
    assert (a.closed, c.closed) == (1, 1)


def test_off_by_default_the_stream_is_interrupted(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, c = broken(), FakeStreamEntry("c/3")
    chain, events = chain_of([a, c], clock, registry, resume_streams=None)
    assert chain.policy.resume_streams is False
    got: list[str] = []
    with pytest.raises(fc.StreamInterruptedError) as info:  # noqa: PT012 - consuming is the act
        for chunk, _ in chain.stream(lambda e: e.stream(), str, resume=Continuations("c/3").open):
            got.append(chunk)
    assert got == ["Hel", "lo"] and info.value.text == "Hello" and c.opens == 0
    assert [e.reason for e in events] == ["stream_interrupted"]


def _interrupted(chain: fc.FailoverChain[FakeStreamEntry], cont: Continuations) -> str:
    with pytest.raises(fc.StreamInterruptedError) as info:
        for _ in chain.stream(lambda e: e.stream(), str, resume=cont.open, plain=plain):
            pass
    return info.value.model


def test_a_stream_that_emitted_a_tool_call_is_never_resumed(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a = FakeStreamEntry(
        "a/1", chunks=["Hi", "<tool x>", "!"], fail_after=2, fail_with=HTTPError(503)
    )
    c = FakeStreamEntry("c/3")
    chain, events = chain_of([a, c], clock, registry)
    assert _interrupted(chain, Continuations("c/3")) == "a/1"
    assert c.opens == 0 and [e.reason for e in events] == ["stream_interrupted"]


def test_no_able_model_after_it_means_interrupted(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    c, a = FakeStreamEntry("c/3"), broken()
    chain, events = chain_of([c, a, FakeStreamEntry("b/2")], clock, registry)
    registry.bench_now(
        "c/3", timedelta(minutes=5)
    )  # the able one is before it (and benched): never tried
    assert _interrupted(chain, Continuations("c/3")) == "a/1"
    assert c.opens == 0 and [e.reason for e in events] == ["stream_interrupted"]


def test_a_benched_able_model_is_not_resumed_on(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, c = broken(), FakeStreamEntry("c/3")
    chain, _ = chain_of([a, c], clock, registry)
    registry.bench_now("c/3", timedelta(minutes=5))
    assert _interrupted(chain, Continuations("c/3")) == "a/1"
    assert c.opens == 0


def test_a_model_benched_meanwhile_is_not_resumed_on_as_a_last_resort(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, c = broken(), FakeStreamEntry("c/3")
    chain, events = chain_of([a, c], clock, registry)
    stream = chain.stream(lambda e: e.stream(), str, resume=Continuations("c/3").open, plain=plain)
    assert next(stream)[0] == "Hel"
    registry.bench_now("c/3", timedelta(minutes=5))  # by another request, mid-stream
    with pytest.raises(fc.StreamInterruptedError):
        list(stream)
    assert c.opens == 0 and [e.reason for e in events] == ["stream_interrupted"]


def test_a_request_specific_failure_is_not_dodged(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, c = broken(error=HTTPError(400, "content_policy_violation")), FakeStreamEntry("c/3")
    chain, _ = chain_of([a, c], clock, registry)
    assert _interrupted(chain, Continuations("c/3")) == "a/1"
    assert c.opens == 0


def test_a_continuation_failing_before_output_moves_on_again(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, b = broken(), FakeStreamEntry("b/2", open_error=HTTPError(529))
    c = FakeStreamEntry("c/3", chunks=[" wor", "ld"])
    chain, events = chain_of([a, b, c], clock, registry)
    cont = Continuations("b/2", "c/3")
    out = list(chain.stream(lambda e: e.stream(), str, resume=cont.open, plain=plain))
    assert "".join(chunk for chunk, _ in out) == "Hello world"
    assert cont.asked == [("b/2", "Hello"), ("c/3", "Hello")]
    assert [(e.model, e.next_model) for e in events] == [("a/1", "b/2"), ("b/2", "c/3")]
    assert [e.reason for e in events] == ["stream_resumed", "resume_failed"]
    # the text continued is a/1's: b/2 added nothing to it
    assert out[-1][1].resumed_from == "a/1" and out[-1][1].failed_attempts == 2


def test_a_continuation_broken_in_turn_raises_with_all_the_text(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a = broken()
    c = FakeStreamEntry("c/3", chunks=[" wor", "ld"], fail_after=1, fail_with=HTTPError(500))
    chain, events = chain_of([a, c], clock, registry)
    got: list[str] = []
    with pytest.raises(fc.StreamInterruptedError) as info:  # noqa: PT012 - consuming is the act
        for chunk, _ in chain.stream(
            lambda e: e.stream(), str, resume=Continuations("c/3").open, plain=plain
        ):
            got.append(chunk)
    assert "".join(got) == info.value.text == "Hello wor"
    assert info.value.model == "c/3"
    assert [e.reason for e in events] == ["stream_resumed", "stream_interrupted"]


def test_resume_streams_may_name_the_keys_able_to_continue(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    policy = fc.FailoverPolicy.build(max_retries=1, resume_streams=["c/3"])
    assert policy.resume_streams == frozenset({"c/3"})
    assert policy.may_continue("c/3", able=False)
    assert not policy.may_continue("d/4", able=True)
    on = fc.FailoverPolicy.build(max_retries=1, resume_streams=True)
    assert on.may_continue("d/4", able=True) and not on.may_continue("d/4", able=False)
    with pytest.raises(TypeError, match="resume_streams"):
        fc.FailoverPolicy.build(resume_streams="c/3")


def test_set_failover_defaults_turns_it_on_for_chains_built_later() -> None:
    old = fc.set_failover_defaults(resume_streams=True)
    try:
        assert fc.FailoverPolicy.build().resume_streams is True
        assert fc.FailoverPolicy.build(resume_streams=False).resume_streams is False
    finally:
        fc.set_failover_defaults(resume_streams=old.resume_streams)
    assert fc.FailoverPolicy.build().resume_streams is False


class Recorder:
    def __init__(self) -> None:
        self.facts: list[tuple[Any, ...]] = []

    def attempt_ended(self, model: str, outcome: str, seconds: float) -> None:
        self.facts.append(("attempt", model, outcome))

    def decided(self, event: fc.FailoverEvent) -> None:
        self.facts.append(("decided", event.reason))

    def probe_ended(self, model: str, result: str) -> None:
        self.facts.append(("probe", model, result))

    def request_ended(self, served: str | None, attempts: int) -> None:
        self.facts.append(("request", served, attempts))


def test_telemetry_counts_the_continuation_as_a_new_attempt(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    a, c = broken(), FakeStreamEntry("c/3", chunks=[" wor", "ld"])
    chain, _ = chain_of([a, c], clock, registry)
    recorder = Recorder()
    _telemetry.add_listener(recorder)
    try:
        list(chain.stream(lambda e: e.stream(), str, resume=Continuations("c/3").open, plain=plain))
    finally:
        _telemetry.remove_listener(recorder)
    assert recorder.facts == [
        ("attempt", "a/1", "success"),  # its first output: answered
        ("request", "a/1", 1),  # once per request
        ("decided", "stream_resumed"),
        ("attempt", "c/3", "success"),
    ]


def test_a_continuation_that_fails_leaves_the_caller_the_original_interruption(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    # The continuation's own error (no status) is classified on its own, not through the
    # broken stream's 503; with nobody left to continue, the caller gets the real cause.
    a, c = broken(), FakeStreamEntry("c/3", open_error=RuntimeError("no status here"))
    chain, events = chain_of([a, c], clock, registry)
    with pytest.raises(fc.StreamInterruptedError) as info:
        for _ in chain.stream(
            lambda e: e.stream(), str, resume=Continuations("c/3").open, plain=plain
        ):
            pass
    assert info.value.model == "a/1" and info.value.text == "Hello"
    assert info.value.kind is fc.ErrorKind.TRANSIENT
    assert [(e.reason, e.status) for e in events] == [
        ("stream_resumed", 503),
        ("resume_failed", None),
    ]
    assert fc.status_of(info.value.__cause__) == 503  # type: ignore[arg-type]


# -- the simulator continues a prefilled Anthropic request ---------------------------------


def test_the_simulator_continues_a_prefill_without_repeating_it(
    provider_sim: ProviderSimulator,
) -> None:
    client = anthropic.Anthropic(
        base_url=provider_sim.anthropic_base_url, api_key="x", max_retries=0
    )
    asked: list[Any] = [{"role": "user", "content": "tell me about failover"}]
    prefill = "[gpt-4o-mini] you said:"

    def continued(**kwargs: Any) -> str:
        messages = [*asked, {"role": "assistant", "content": prefill}]
        return "".join(
            e.delta.text
            for e in client.messages.create(
                model="claude-haiku-4-5", max_tokens=100, messages=messages, stream=True, **kwargs
            )
            if e.type == "content_block_delta"
        )

    assert prefill + continued() == "[gpt-4o-mini] you said: tell me about failover"
    reply = client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=100,
        messages=[*asked, {"role": "assistant", "content": "Some text I wrote"}],
    )
    assert reply.content[0].text == " [claude-haiku-4-5] continued."  # type: ignore[union-attr]
    with pytest.raises(anthropic.BadRequestError, match="trailing whitespace"):
        client.messages.create(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=[*asked, {"role": "assistant", "content": prefill + " "}],
        )


def test_resume_streams_naming_a_key_not_in_the_chain_is_refused(
    clock: FakeClock, registry: fc.HealthRegistry
) -> None:
    with pytest.raises(fc.ChainConfigError, match="nope/model") as caught:
        chain_of([broken()], clock, registry, resume_streams=["nope/model"])
    assert "the chain's keys are" in str(caught.value)
    old = fc.set_failover_defaults(resume_streams=["x/1"])  # a process default spans chains
    try:
        chain_of([broken()], clock, registry)
    finally:
        fc.set_failover_defaults(resume_streams=old.resume_streams)
