"""OpenInference (what Phoenix and Langfuse read) sees each model call once, in one trace.

The real instrumentor exports to OpenTelemetry's in-memory exporter.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from llama_index.core.llms import ChatMessage
from llama_index.core.prompts import PromptTemplate
from llama_index.core.tools import FunctionTool
from llama_index_instrumentation.dispatcher import DISPATCHER_SPAN_DECORATED_ATTR
from openinference.instrumentation.llama_index import LlamaIndexInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from failover_core.simulator import ProviderSimulator
from llamaindex_failover import FailoverLLM
from tests.llamaindex.conftest import OPENAI

Make = Callable[..., Any]
HELLO = [ChatMessage(role="user", content="hello")]
KIND, TOKENS = "openinference.span.kind", "llm.token_count.total"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    instrumentor = LlamaIndexInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield exporter
    instrumentor.uninstrument()


def finished(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    spans = list(exporter.get_finished_spans())
    exporter.clear()
    return spans


def llm_spans(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    return [s for s in spans if (s.attributes or {}).get(KIND) == "LLM"]


def tokens(spans: list[ReadableSpan]) -> int:
    return sum(int((s.attributes or {}).get(TOKENS, 0)) for s in spans)  # type: ignore[arg-type]


def test_token_sum_equals_the_direct_calls_and_the_failover_span_is_a_chain(
    openai_llm: Make, like_llm: Make, failover_llm: Make, exporter: InMemorySpanExporter
) -> None:
    openai_llm().chat(HELLO)
    direct = finished(exporter)
    failover_llm(openai_llm(), like_llm()).chat(HELLO)
    spans = finished(exporter)
    assert tokens(spans) == tokens(direct) > 0
    assert len(llm_spans(spans)) == len(llm_spans(direct)) == 1
    [router] = [s for s in spans if s.name == "FailoverLLM.chat"]
    assert (router.attributes or {}).get(KIND) == "CHAIN"
    assert len({s.context.trace_id for s in spans}) == 1


@pytest.mark.parametrize("fault", [{"status": 503, "times": 1}, {"status": 401}])
def test_a_stream_that_retries_or_fails_over_is_one_trace(
    fault: dict[str, Any],
    provider_sim: ProviderSimulator,
    openai_llm: Make,
    like_llm: Make,
    failover_llm: Make,
    exporter: InMemorySpanExporter,
) -> None:
    provider_sim.fail(OPENAI, **fault)
    # A real backoff: OpenInference forgets an ended span within 0.1 s, so a child opened
    # after the wait finds its parent only if the failover span is still open.
    llm = failover_llm(openai_llm(), like_llm(), backoff=lambda attempt: 0.15)
    text = "".join(r.delta or "" for r in llm.stream_chat(HELLO))
    assert text.endswith("you said: hello")
    spans = finished(exporter)
    [router] = [s for s in spans if s.name == "FailoverLLM.stream_chat"]
    inner = [s for s in spans if s is not router]
    assert router.parent is None and all(s.parent is not None for s in inner)
    assert {s.context.trace_id for s in spans} == {router.context.trace_id}, "one trace"
    failed = [s for s in inner if s.status.status_code.name == "ERROR"]
    assert [s.name for s in failed] == ["OpenAI.stream_chat"]
    assert failed[0].parent is not None and failed[0].parent.span_id == router.context.span_id
    assert router.end_time is not None and all(
        s.end_time is not None and s.end_time <= router.end_time for s in inner
    ), "the failover span lasts as long as its stream"


class City(BaseModel):
    name: str
    population: int


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def structured_and_tools(llm: Any) -> None:
    """The inherited span-decorated methods a user calls: structured output and tools."""
    llm.structured_predict(City, PromptTemplate("a city like {hint}"), hint="Rome")
    llm.predict_and_call([FunctionTool.from_defaults(add)], user_msg="what is 2 + 40?")


def test_structured_output_and_predict_and_call_show_only_the_childs_llm_spans(
    openai_llm: Make, failover_llm: Make, exporter: InMemorySpanExporter
) -> None:
    structured_and_tools(openai_llm())  # the first call in a process shows one span fewer
    finished(exporter)
    structured_and_tools(openai_llm())
    direct = finished(exporter)
    structured_and_tools(failover_llm(openai_llm()))
    spans = finished(exporter)
    # The same LLM spans as the direct child's, but its own predict_and_call: on the
    # failover LLM that is the router (the tools run under it; the child is asked with
    # chat_with_tools). Before: 4 more, the failover LLM's, named failover:..., no tokens.
    names = sorted(s.name for s in llm_spans(spans))
    assert names == sorted(s.name for s in llm_spans(direct) if s.name != "OpenAI.predict_and_call")
    assert tokens(spans) == tokens(direct) > 0
    assert not [s for s in llm_spans(spans) if s.name.startswith("FailoverLLM")]
    routers = [s for s in spans if s.name.startswith("FailoverLLM.")]
    assert {s.name for s in routers} >= {
        "FailoverLLM.structured_predict",
        "FailoverLLM.predict_and_call",
    }
    assert all((s.attributes or {}).get(KIND) == "CHAIN" for s in routers)


def test_no_method_of_the_failover_llm_keeps_a_llamaindex_llm_span() -> None:
    """Every span-decorated method is the failover LLM's own (a router's span): one inherited
    from LlamaIndex would report the failover LLM as an LLM call to tracers."""
    inherited = []
    for name in dir(FailoverLLM):
        owner = next(k for k in FailoverLLM.__mro__ if name in k.__dict__)
        method = owner.__dict__[name]
        ours = owner is FailoverLLM and inspect.isfunction(method)
        if callable(method) and hasattr(method, DISPATCHER_SPAN_DECORATED_ATTR) and not ours:
            inherited.append(f"{owner.__name__}.{name}")
    assert inherited == []
