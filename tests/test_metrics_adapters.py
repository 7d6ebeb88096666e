"""Metrics from both adapters, with real SDK clients on the simulator: one
instrumentation, process-wide, counts what a LangChain chain and a LlamaIndex chain did."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_openai import ChatOpenAI
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai import OpenAI

import failover_core as fc
from failover_core.simulator import ProviderSimulator
from langchain_failover import FailoverChatModel
from llamaindex_failover import FailoverLLM

otel = pytest.importorskip("failover_core.otel")
sdk_metrics = pytest.importorskip("opentelemetry.sdk.metrics")
sdk_export = pytest.importorskip("opentelemetry.sdk.metrics.export")


def _attempts(reader: Any) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for resource in reader.get_metrics_data().resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == "llm_failover.attempts":
                    for p in metric.data.data_points:
                        a = p.attributes
                        out[(a["llm_failover.model"], a["llm_failover.outcome"])] = p.value
    return out


def test_both_adapters_report_to_one_instrumentation(
    provider_sim: ProviderSimulator, registry: fc.HealthRegistry, reader: Any
) -> None:
    provider_sim.fail("gpt-4o-mini", status=401, times=None)
    lc = FailoverChatModel(
        models=[
            ChatOpenAI(
                model=name,
                base_url=provider_sim.openai_base_url,
                api_key="x",
                max_retries=0,
            )
            for name in ("gpt-4o-mini", "gpt-4.1-nano")
        ]
    )
    li = FailoverLLM(
        llms={
            "li/primary": OpenAI(
                model="gpt-4o-mini",
                api_base=provider_sim.openai_base_url,
                api_key="x",
                max_retries=0,
            ),
            "li/backup": OpenAI(
                model="gpt-4.1-nano",
                api_base=provider_sim.openai_base_url,
                api_key="x",
                max_retries=0,
            ),
        }
    )
    lc.invoke("hi")
    list(lc.stream("hi again"))  # the primary is benched now: skipped
    li.chat([ChatMessage(role="user", content="hello")])
    assert _attempts(reader) == {
        ("openai/gpt-4o-mini", "auth_dead"): 1,
        ("openai/gpt-4.1-nano", "success"): 2,
        ("li/primary", "auth_dead"): 1,
        ("li/backup", "success"): 1,
    }
