"""The fault-injecting provider, through the real openai and anthropic clients."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import anthropic
import httpx
import openai
import pytest

from failover_core.simulator import Fault, ProviderSimulator, sample_from_schema
from failover_core.simulator.__main__ import parse_fault, parse_latency

USER = [{"role": "user", "content": "what is the weather"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


@pytest.fixture
def oai(provider_sim: ProviderSimulator) -> openai.OpenAI:
    return openai.OpenAI(base_url=provider_sim.openai_base_url, api_key="sk-x", max_retries=0)


@pytest.fixture
def claude(provider_sim: ProviderSimulator) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=provider_sim.anthropic_base_url, api_key="x", max_retries=0)


def test_openai_reply_names_the_model_and_echoes(oai: openai.OpenAI) -> None:
    out = oai.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert out.choices[0].message.content == "[gpt-4o-mini] you said: what is the weather"
    assert out.usage is not None and out.usage.total_tokens > 0


def test_openai_stream_assembles_the_same_text(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="m1", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[m1] you said: what is the weather"
    assert chunks[-1].usage is not None


def test_openai_tool_call_then_answer_after_the_tool_result(oai: openai.OpenAI) -> None:
    first = oai.chat.completions.create(model="m1", messages=USER, tools=[WEATHER_TOOL])  # type: ignore[list-item]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "sample", "days": 1}  # type: ignore[union-attr]
    second = oai.chat.completions.create(
        model="m1",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        messages=[
            *USER,
            first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ],
    )
    assert second.choices[0].message.content == "[m1] tool said: sunny, 21C"


def test_openai_streamed_tool_call_arguments_reassemble(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="m1",
            messages=USER,
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
            stream=True,
        )
    )
    args = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments or ""  # type: ignore[index,union-attr]
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert json.loads(args) == {"city": "sample", "days": 1}


def test_openai_json_schema_response_format(oai: openai.OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "tags"],
    }
    out = oai.chat.completions.create(
        model="m1",
        messages=USER,
        response_format={"type": "json_schema", "json_schema": {"name": "Thing", "schema": schema}},  # type: ignore[typeddict-item]
    )
    assert set(json.loads(out.choices[0].message.content or "")) == {"name", "tags"}


def test_anthropic_text_stream_and_tool_use(claude: anthropic.Anthropic) -> None:
    msg = claude.messages.create(model="claude-sim", max_tokens=64, messages=USER)  # type: ignore[arg-type]
    assert msg.content[0].text == "[claude-sim] you said: what is the weather"  # type: ignore[union-attr]
    with claude.messages.stream(model="claude-sim", max_tokens=64, messages=USER) as stream:  # type: ignore[arg-type]
        assert "".join(stream.text_stream) == msg.content[0].text  # type: ignore[union-attr]
    tool = {"name": "get_weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}  # type: ignore[index]
    used = claude.messages.create(
        model="claude-sim",
        max_tokens=64,
        messages=USER,  # type: ignore[arg-type]
        tools=[tool],
    )  # type: ignore[list-item]
    assert used.stop_reason == "tool_use"
    assert used.content[0].input == {"city": "sample", "days": 1}  # type: ignore[union-attr]


def test_faults_apply_times_then_heal_and_calls_are_counted(
    provider_sim: ProviderSimulator, oai: openai.OpenAI
) -> None:
    provider_sim.fail("m1", status=429, times=2, retry_after=3)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as info:
            oai.chat.completions.create(model="m1", messages=USER)
        assert info.value.response.headers["retry-after"] == "3"
    oai.chat.completions.create(model="m1", messages=USER)
    assert provider_sim.calls("m1") == 3 and provider_sim.calls() == 3


def test_forever_faults_last_until_cleared(
    provider_sim: ProviderSimulator, oai: openai.OpenAI
) -> None:
    provider_sim.fail("m1", status=503, times=None)
    for _ in range(3):
        with pytest.raises(openai.InternalServerError):
            oai.chat.completions.create(model="m1", messages=USER)
    provider_sim.clear("m1")
    oai.chat.completions.create(model="m1", messages=USER)


def test_star_fault_hits_every_model(provider_sim: ProviderSimulator, oai: openai.OpenAI) -> None:
    provider_sim.fail("*", status=500, times=2)
    for model in ("x", "y"):
        with pytest.raises(openai.InternalServerError):
            oai.chat.completions.create(model=model, messages=USER)
    oai.chat.completions.create(model="x", messages=USER)


def test_latency_is_added(provider_sim: ProviderSimulator, oai: openai.OpenAI) -> None:
    provider_sim.set_latency("m1", 0.3)
    started = time.perf_counter()
    oai.chat.completions.create(model="m1", messages=USER)
    assert time.perf_counter() - started >= 0.3


def test_a_latency_distribution_has_the_median_and_tail_asked_for() -> None:
    from failover_core.simulator import RecordedRequest, SimulatorState

    state = SimulatorState()
    state.set_latency("m1", 0.1, p99=2.0, seed=7)
    request = RecordedRequest("openai", "m1", True, {}, False)
    draws = sorted(state.admit(request)[1] for _ in range(4000))
    assert 0.09 < draws[2000] < 0.11  # the median
    assert 1.6 < draws[3960] < 2.5  # the 99th percentile
    assert draws[-1] > 3.0  # a heavy tail: the worst is far beyond the p99
    with pytest.raises(ValueError, match="p99"):
        state.set_latency("m1", 0.5, p99=0.1)


def test_a_latency_distribution_applies_over_http(provider_sim: ProviderSimulator) -> None:
    from failover_core.simulator import RemoteSimulator

    remote = RemoteSimulator(provider_sim.base_url)
    remote.set_latency("m1", 0.01, p99=0.02, seed=1)
    plan = httpx.get(f"{provider_sim.base_url}/_sim/state").json()["plans"]["m1"]
    assert (plan["latency"], plan["latency_p99"]) == (0.01, 0.02)
    remote.close()


def test_requests_are_recorded_without_credentials(
    provider_sim: ProviderSimulator, oai: openai.OpenAI
) -> None:
    oai.chat.completions.create(model="m1", messages=USER, tools=[WEATHER_TOOL])  # type: ignore[list-item]
    [rec] = provider_sim.requests("m1")
    assert rec.api == "openai" and rec.had_credentials and not rec.stream
    assert rec.body["tools"][0]["function"]["name"] == "get_weather"
    assert "sk-x" not in json.dumps(rec.body)


def test_control_endpoints_plan_faults_over_http(provider_sim: ProviderSimulator) -> None:
    base = provider_sim.base_url
    r = httpx.post(f"{base}/_sim/faults", json={"model": "m9", "status": 401, "times": 1})
    assert r.status_code == 200 and r.json()["plans"]["m9"]["faults"][0]["status"] == 401
    assert httpx.post(f"{base}/_sim/faults", json={"model": "m9", "bogus": 1}).status_code == 400
    body = {"model": "m9", "messages": USER}
    assert httpx.post(f"{base}/v1/chat/completions", json=body).status_code == 401
    assert httpx.post(f"{base}/v1/chat/completions", json=body).status_code == 200
    assert httpx.get(f"{base}/_sim/state").json()["calls"] == {"m9": 2}
    httpx.post(f"{base}/_sim/reset")
    assert httpx.get(f"{base}/_sim/state").json()["calls"] == {}


def test_bad_fault_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="4xx or 5xx"):
        Fault(status=200)
    with pytest.raises(ValueError, match="times"):
        Fault(times=0)
    with pytest.raises(ValueError, match="unknown fault field"):
        Fault.from_dict({"stauts": 500})


def test_cli_fault_syntax() -> None:
    model, fault = parse_fault("gpt-4o-mini=503,times=forever,retry_after=1.5,after_chunks=2")
    assert model == "gpt-4o-mini"
    assert (fault.status, fault.times, fault.retry_after, fault.after_chunks) == (503, None, 1.5, 2)


def test_cli_latency_syntax_takes_a_heavy_tail() -> None:
    import argparse

    assert parse_latency("*=0.05") == ("*", 0.05, {})
    assert parse_latency("gpt-4o-mini=0.1,p99=1.5,seed=3") == (
        "gpt-4o-mini",
        0.1,
        {"p99": 1.5, "seed": 3.0},
    )
    with pytest.raises(argparse.ArgumentTypeError, match="MODEL=P50,p99=SECONDS"):
        parse_latency("gpt-4o-mini=0.1,p95=1.5")


def test_cli_starts_a_server_users_can_point_clients_at() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "failover_core.simulator",
            "--port",
            "0",
            "--fail",
            "cli-model=401",
            "--latency",
            "slow-model=0.01,p99=0.05,seed=1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        base = line.strip().rsplit(" ", 1)[-1]
        assert base.startswith("http://127.0.0.1:")
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="cli-model", messages=USER)  # type: ignore[arg-type]
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_schema_sampler_handles_refs_unions_and_enums() -> None:
    schema = {
        "$defs": {"Color": {"enum": ["red", "blue"]}},
        "type": "object",
        "properties": {
            "color": {"$ref": "#/$defs/Color"},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "number"}]},
            "flag": {"type": "boolean"},
        },
    }
    assert sample_from_schema(schema) == {"color": "red", "maybe": 1.5, "flag": True}


def test_star_latency_still_applies_to_a_model_with_its_own_fault(
    provider_sim: ProviderSimulator, oai: openai.OpenAI
) -> None:
    provider_sim.set_latency("*", 0.3)
    provider_sim.fail("m1", status=500, times=1)
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="m1", messages=USER)  # type: ignore[arg-type]
    started = time.perf_counter()
    oai.chat.completions.create(model="m1", messages=USER)  # type: ignore[arg-type]
    assert time.perf_counter() - started >= 0.3


def test_remote_simulator_drives_a_server_over_http(provider_sim: ProviderSimulator) -> None:
    from failover_core.simulator import RemoteSimulator

    remote = RemoteSimulator(provider_sim.base_url)
    remote.fail("m1", 401, times=None)
    client = openai.OpenAI(base_url=remote.openai_base_url, api_key="x", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="m1", messages=USER)  # type: ignore[arg-type]
    remote.clear("m1")
    client.chat.completions.create(model="m1", messages=USER)  # type: ignore[arg-type]
    assert remote.calls("m1") == 2 and remote.calls() == 2
    remote.reset()
    assert remote.call_counts() == {}
    remote.close()


TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Current local time in a timezone",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}
REPORT_TOOL = {
    "type": "function",
    "function": {
        "name": "Report",
        "description": "The final answer to give the user",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "summary": {"type": "string"}},
        },
    },
}
PARIS = [{"role": "user", "content": "What's the weather in 'Paris'?"}]


def test_an_apostrophe_is_not_a_quote_in_tool_arguments(oai: openai.OpenAI) -> None:
    out = oai.chat.completions.create(model="m1", messages=PARIS, tools=[WEATHER_TOOL])  # type: ignore[arg-type,list-item]
    call = out.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert json.loads(call.function.arguments)["city"] == "Paris"  # type: ignore[union-attr]


def test_with_several_tools_the_one_the_prompt_is_about_is_called(
    oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    out = oai.chat.completions.create(model="m1", messages=PARIS, tools=[TIME_TOOL, WEATHER_TOOL])  # type: ignore[arg-type,list-item]
    assert out.choices[0].message.tool_calls[0].function.name == "get_weather"  # type: ignore[index,union-attr]
    tools = [
        {"name": t["function"]["name"], "input_schema": t["function"]["parameters"]}  # type: ignore[index]
        for t in (TIME_TOOL, WEATHER_TOOL)
    ]
    used = claude.messages.create(model="c1", max_tokens=64, messages=PARIS, tools=tools)  # type: ignore[arg-type]
    assert used.content[0].name == "get_weather"  # type: ignore[union-attr]


def test_a_required_tool_call_after_a_tool_result_calls_a_tool_not_called_yet(
    oai: openai.OpenAI,
) -> None:
    # What create_agent(response_format=...) sends: its tools, then the answer schema as a
    # tool, with a tool call required at every turn.
    tools = [WEATHER_TOOL, REPORT_TOOL]
    first = oai.chat.completions.create(
        model="m1",
        messages=PARIS,  # type: ignore[arg-type]
        tools=tools,  # type: ignore[arg-type]
        tool_choice="required",
    )
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    second = oai.chat.completions.create(
        model="m1",
        messages=[
            *PARIS,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ],  # type: ignore[list-item]
        tools=tools,  # type: ignore[arg-type]
        tool_choice="required",
    )
    report = second.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert report.function.name == "Report"  # type: ignore[union-attr]
    assert json.loads(report.function.arguments)["city"] == "Paris"  # type: ignore[union-attr]


def test_create_agent_with_a_response_format_returns_a_structured_response(
    provider_sim: ProviderSimulator,
) -> None:
    agents = pytest.importorskip("langchain.agents")
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from pydantic import BaseModel

    class WeatherReport(BaseModel):
        """A weather report for the user."""

        city: str
        summary: str

    @tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return f"sunny in {city}"

    @tool
    def get_time(zone: str) -> str:
        """Current local time in a timezone."""
        return "noon"

    model = ChatOpenAI(
        model="gpt-4o-mini", base_url=provider_sim.openai_base_url, api_key="x", max_retries=0
    )
    agent = agents.create_agent(
        model,
        tools=[get_time, get_weather],
        response_format=agents.structured_output.ToolStrategy(WeatherReport),
    )
    result = agent.invoke({"messages": [("user", "What's the weather in 'Paris'?")]})
    called = [c["name"] for m in result["messages"] for c in getattr(m, "tool_calls", [])]
    assert called == ["get_weather", "WeatherReport"]
    assert result["structured_response"].city == "Paris"


# -- hung and crawling providers ---------------------------------------------------------

HANG = 0.4  # seconds; long against loopback latency, short for the suite


def _post(sim: ProviderSimulator, api: str, model: str, stream: bool = False) -> httpx.Request:
    path = "/v1/chat/completions" if api == "openai" else "/v1/messages"
    body: dict[str, object] = {"model": model, "messages": USER, "stream": stream}
    if api == "anthropic":
        body["max_tokens"] = 64
    return httpx.Request("POST", f"{sim.base_url}{path}", json=body)


def _timed_lines(sim: ProviderSimulator, api: str, model: str) -> list[tuple[float, str]]:
    """Each non-empty SSE line of a streamed request, with seconds since it was sent."""
    out: list[tuple[float, str]] = []
    with httpx.Client(timeout=10) as client:
        started = time.perf_counter()
        response = client.send(_post(sim, api, model, stream=True), stream=True)
        for line in response.iter_lines():
            if line:
                out.append((time.perf_counter() - started, line))
    return out


def _read_all(client: httpx.Client, request: httpx.Request) -> None:
    response = client.send(request, stream=True)
    for _ in response.iter_lines():
        pass


@pytest.mark.parametrize("api", ["openai", "anthropic"])
def test_hang_sends_nothing_then_gives_up_and_closes_the_connection(
    provider_sim: ProviderSimulator, api: str
) -> None:
    provider_sim.hang("hung", HANG)
    with httpx.Client(timeout=HANG / 4) as client, pytest.raises(httpx.ReadTimeout):
        client.send(_post(provider_sim, api, "hung"))  # not even a status line
    provider_sim.hang("hung", HANG)
    with httpx.Client(timeout=10) as client:
        started = time.perf_counter()
        response = client.send(_post(provider_sim, api, "hung", stream=True))
        assert time.perf_counter() - started >= HANG
    assert response.status_code == 503 and response.headers["connection"] == "close"
    assert provider_sim.calls("hung") == 2


@pytest.mark.parametrize(
    ("api", "header", "keepalive", "content"),
    [
        ("openai", '"role": "assistant"', ": keep-alive", '"content": "[stall1]"'),
        ("anthropic", "event: message_start", "event: ping", "event: content_block_delta"),
    ],
)
def test_stall_first_token_sends_a_header_then_only_keepalives(
    provider_sim: ProviderSimulator, api: str, header: str, keepalive: str, content: str
) -> None:
    provider_sim.stall_first_token("stall1", HANG, keepalive=0.05)
    lines = _timed_lines(provider_sim, api, "stall1")
    first_content = next(t for t, line in lines if content in line)
    assert first_content >= HANG
    before = [line for t, line in lines if t < first_content]
    assert any(header in line for line in before)
    assert sum(keepalive in line for line in before) >= HANG / 0.05 / 2


def test_stall_after_chunks_crawls_midway_and_sdks_ignore_the_keepalives(
    provider_sim: ProviderSimulator, oai: openai.OpenAI, claude: anthropic.Anthropic
) -> None:
    provider_sim.stall_after_chunks("*", 2, HANG, times=2, keepalive=0.05)
    gaps: list[float] = []
    texts: list[str] = []
    started = time.perf_counter()
    for chunk in oai.chat.completions.create(model="crawl", messages=USER, stream=True):  # type: ignore[arg-type]
        if chunk.choices and chunk.choices[0].delta.content:
            texts.append(chunk.choices[0].delta.content)
            gaps.append(time.perf_counter() - started)
    assert "".join(texts) == "[crawl] you said: what is the weather"
    assert gaps[1] < HANG / 2 and gaps[2] >= HANG  # two chunks, then the stall
    with claude.messages.stream(
        model="crawl", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert "".join(stream.text_stream) == "[crawl] you said: hi"


def test_a_non_streamed_request_to_a_stalled_model_is_answered_late(
    provider_sim: ProviderSimulator, oai: openai.OpenAI
) -> None:
    provider_sim.stall_first_token("slow", HANG)
    started = time.perf_counter()
    out = oai.chat.completions.create(model="slow", messages=USER)  # type: ignore[arg-type]
    assert time.perf_counter() - started >= HANG
    assert out.choices[0].message.content == "[slow] you said: what is the weather"


@pytest.mark.parametrize("stream", [False, True])
def test_a_client_leaving_a_hang_or_a_stall_is_counted(
    provider_sim: ProviderSimulator, stream: bool
) -> None:
    model = f"left-{stream}"
    if stream:
        provider_sim.stall_first_token(model, 5.0, keepalive=1.0)
    else:
        provider_sim.hang(model, 5.0)
    request = _post(provider_sim, "openai", model, stream=stream)
    with httpx.Client(timeout=HANG / 4) as client, pytest.raises(httpx.ReadTimeout):
        _read_all(client, request)
    deadline = time.monotonic() + 2
    while provider_sim.disconnects(model) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert provider_sim.disconnects(model) == 1


def test_hang_and_stall_faults_over_the_cli_and_control_endpoints(
    provider_sim: ProviderSimulator,
) -> None:
    model, fault = parse_fault("gpt-4o-mini=hang=30,times=forever")
    assert (model, fault.hang, fault.times) == ("gpt-4o-mini", 30.0, None)
    _, fault = parse_fault("m=stall_after_chunks=2,stall=20,keepalive=0.5")
    assert (fault.stall_after_chunks, fault.stall, fault.keepalive) == (2, 20.0, 0.5)
    _, fault = parse_fault("m=504,stall_first_token=15")
    assert (fault.status, fault.stall_first_token) == (504, 15.0)
    base = provider_sim.base_url
    r = httpx.post(f"{base}/_sim/faults", json={"model": "m9", "hang": HANG, "status": 504})
    assert r.status_code == 200 and r.json()["plans"]["m9"]["faults"][0]["hang"] == HANG
    started = time.perf_counter()
    body = {"model": "m9", "messages": USER}
    assert httpx.post(f"{base}/v1/chat/completions", json=body).status_code == 504
    assert time.perf_counter() - started >= HANG
    from failover_core.simulator import RemoteSimulator

    remote = RemoteSimulator(base)
    remote.stall_after_chunks("m8", 1, 20)
    remote.stall_first_token("m8", 10)
    remote.hang("m8", 5)
    faults = httpx.get(f"{base}/_sim/state").json()["plans"]["m8"]["faults"]
    assert [(f["stall_after_chunks"], f["stall_first_token"], f["hang"]) for f in faults] == [
        (1, None, None),
        (None, 10, None),
        (None, None, 5),
    ]
    assert remote.disconnects("m8") == 0
    remote.close()


def test_bad_hang_and_stall_plans_are_refused() -> None:
    with pytest.raises(ValueError, match="hang"):
        Fault(hang=-1)
    with pytest.raises(ValueError, match="needs stall"):
        Fault(stall_after_chunks=1)
    with pytest.raises(ValueError, match="one of"):
        Fault(hang=1, stall_first_token=1)
    with pytest.raises(ValueError, match="keepalive"):
        Fault(stall_first_token=1, keepalive=0)
