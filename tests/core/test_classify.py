"""The classifier, on real SDK exceptions built from real HTTP responses by the simulator."""

from __future__ import annotations

import asyncio
import enum
import socket
from typing import Any

import anthropic
import httpx
import openai
import pydantic
import pytest

import failover_core as fc
from failover_core.simulator import ProviderSimulator

T, A, R, U = (
    fc.ErrorKind.TRANSIENT,
    fc.ErrorKind.AUTH_DEAD,
    fc.ErrorKind.REQUEST_SPECIFIC,
    fc.ErrorKind.UNKNOWN,
)

# (fault options, expected kind): every row of DESIGN.md's table that an HTTP API can send.
HTTP_ROWS: list[tuple[dict[str, Any], fc.ErrorKind]] = [
    ({"status": 408}, T),
    ({"status": 409}, T),
    ({"status": 425}, T),
    ({"status": 429}, T),
    ({"status": 500}, T),
    ({"status": 502}, T),
    ({"status": 503}, T),
    ({"status": 504}, T),
    ({"status": 529}, T),
    ({"status": 401}, A),
    ({"status": 402}, A),
    ({"status": 403}, A),
    ({"status": 404}, A),
    ({"status": 404, "code": "model_not_found"}, A),
    (
        {
            "status": 429,
            "code": "insufficient_quota",
            "message": "You exceeded your current quota, please check your plan.",
        },
        A,
    ),
    ({"status": 400}, R),
    ({"status": 413}, R),
    ({"status": 422}, R),
    (
        {
            "status": 400,
            "code": "context_length_exceeded",
            "message": "This model's maximum context length is 128000 tokens.",
        },
        R,
    ),
    ({"status": 400, "message": "prompt is too long: 210000 tokens > 200000 maximum"}, R),
    (
        {
            "status": 400,
            "code": "content_policy_violation",
            "message": "Your request was rejected by the content filter.",
        },
        R,
    ),
    ({"status": 400, "code": "content_filter"}, R),
]


def _id(row: tuple[dict[str, Any], fc.ErrorKind]) -> str:
    return "-".join(str(v) for v in row[0].values() if not str(v).startswith(("You", "This")))[:40]


def openai_error(sim: ProviderSimulator, **fault: Any) -> Exception:
    sim.fail("gpt-4o-mini", **fault)
    client = openai.OpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    try:
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
    except Exception as exc:
        return exc
    raise AssertionError("the simulator did not fail")


def anthropic_error(sim: ProviderSimulator, **fault: Any) -> Exception:
    sim.fail("claude-sim-1", **fault)
    client = anthropic.Anthropic(base_url=sim.anthropic_base_url, api_key="x", max_retries=0)
    try:
        client.messages.create(
            model="claude-sim-1", max_tokens=64, messages=[{"role": "user", "content": "hi"}]
        )
    except Exception as exc:
        return exc
    raise AssertionError("the simulator did not fail")


@pytest.mark.parametrize(("fault", "kind"), HTTP_ROWS, ids=[_id(r) for r in HTTP_ROWS])
def test_openai_sdk_errors(
    provider_sim: ProviderSimulator, fault: dict[str, Any], kind: fc.ErrorKind
) -> None:
    exc = openai_error(provider_sim, **fault)
    assert isinstance(exc, openai.APIStatusError)
    assert fc.status_of(exc) == fault["status"]
    assert fc.classify(exc) is kind


@pytest.mark.parametrize(("fault", "kind"), HTTP_ROWS, ids=[_id(r) for r in HTTP_ROWS])
def test_anthropic_sdk_errors(
    provider_sim: ProviderSimulator, fault: dict[str, Any], kind: fc.ErrorKind
) -> None:
    exc = anthropic_error(provider_sim, **fault)
    assert isinstance(exc, anthropic.APIStatusError)
    assert fc.status_of(exc) == fault["status"]
    assert fc.classify(exc) is kind


def test_anthropic_overloaded_is_transient_by_its_type_too(provider_sim: ProviderSimulator) -> None:
    exc = anthropic_error(provider_sim, status=529)
    assert type(exc).__name__ == "OverloadedError"
    assert exc.body["error"]["type"] == "overloaded_error"  # type: ignore[attr-defined]
    assert fc.classify(exc) is T


def test_openai_mid_stream_error_event_is_transient(provider_sim: ProviderSimulator) -> None:
    provider_sim.fail("gpt-4o-mini", status=503, after_chunks=1)
    client = openai.OpenAI(base_url=provider_sim.openai_base_url, api_key="x", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}], stream=True
    )
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert fc.status_of(info.value) is None, "the HTTP status was 200; the error came in-stream"
    assert fc.classify(info.value) is T


def test_anthropic_mid_stream_overload_is_transient(provider_sim: ProviderSimulator) -> None:
    provider_sim.fail("claude-x", status=529, after_chunks=1)
    client = anthropic.Anthropic(
        base_url=provider_sim.anthropic_base_url, api_key="x", max_retries=0
    )
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(
            model="claude-x", max_tokens=64, messages=[{"role": "user", "content": "hi you"}]
        ) as stream,
    ):
        list(stream.text_stream)
    assert fc.classify(info.value) is T


def test_dropped_connection_is_transient(provider_sim: ProviderSimulator) -> None:
    exc = openai_error(provider_sim, status=503, disconnect=True)
    assert isinstance(exc, openai.APIConnectionError)
    assert fc.classify(exc) is T


def test_connection_refused_is_transient() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.APIConnectionError) as info:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert fc.classify(info.value) is T
    assert fc.classify(info.value.__cause__) is T


def test_client_timeout_is_transient(provider_sim: ProviderSimulator) -> None:
    provider_sim.set_latency("slow-model", 2.0)
    client = openai.OpenAI(
        base_url=provider_sim.openai_base_url, api_key="x", max_retries=0, timeout=0.2
    )
    with pytest.raises(openai.APITimeoutError) as info:
        client.chat.completions.create(
            model="slow-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert fc.classify(info.value) is T


async def test_anthropic_async_timeout_is_transient(provider_sim: ProviderSimulator) -> None:
    provider_sim.set_latency("slow-claude", 2.0)
    client = anthropic.AsyncAnthropic(
        base_url=provider_sim.anthropic_base_url, api_key="x", max_retries=0, timeout=0.2
    )
    with pytest.raises(anthropic.APITimeoutError) as info:
        await client.messages.create(
            model="slow-claude", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    assert fc.classify(info.value) is T


# -- duck-typed shapes of other SDKs -----------------------------------------------------


class ClientError(Exception):
    """botocore's ClientError keeps the parsed response as a dict."""

    def __init__(self, code: str, status: int) -> None:
        super().__init__(f"An error occurred ({code})")
        self.response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}


class ResourceExhausted(Exception):
    """google.api_core keeps an int ``code`` and a gRPC status name."""

    code = 429
    grpc_status_code = None
    reason = "RESOURCE_EXHAUSTED"


class GrpcLike(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (ClientError("ThrottlingException", 400), T),
        (ClientError("AccessDeniedException", 403), A),
        (ClientError("ValidationException", 400), R),
        (ResourceExhausted(), T),
        (GrpcLike("RESOURCE_EXHAUSTED"), T),
        (GrpcLike("UNAVAILABLE"), T),
        (GrpcLike("PERMISSION_DENIED"), A),
        (GrpcLike("INVALID_ARGUMENT"), R),
        (TimeoutError(), T),
        (asyncio.TimeoutError(), T),
        (ConnectionResetError(), T),
        (httpx.ReadTimeout("slow"), T),
        (httpx.RemoteProtocolError("peer closed"), T),
        (ValueError("tool_choice 'any' cannot be expressed"), R),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_other_shapes(exc: BaseException, kind: fc.ErrorKind) -> None:
    assert fc.classify(exc) is kind


def test_status_is_found_along_the_cause_chain() -> None:
    class Wrapper(Exception):
        pass

    inner = httpx.HTTPStatusError(
        "bad", request=httpx.Request("POST", "http://x"), response=httpx.Response(503)
    )
    try:
        try:
            raise inner
        except httpx.HTTPStatusError as exc:
            raise Wrapper("langchain wrapped it") from exc
    except Wrapper as outer:
        assert fc.status_of(outer) == 503
        assert fc.classify(outer) is T


def test_status_from_context_without_explicit_cause() -> None:
    try:
        try:
            raise ClientError("ThrottlingException", 429)
        except ClientError:
            raise RuntimeError("retry layer gave up") from None  # suppressed but kept
    except RuntimeError as outer:
        assert outer.__context__ is not None
        assert fc.status_of(outer) == 429


def test_cycles_in_the_chain_terminate() -> None:
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__cause__, b.__cause__ = b, a
    assert fc.status_of(a) is None
    assert fc.classify(a) is R


def test_bool_and_out_of_range_codes_are_not_statuses() -> None:
    class Weird(Exception):
        status_code = True
        code = 42

    assert fc.status_of(Weird()) is None


def test_global_rules_extend_and_can_be_removed() -> None:
    class QuotaError(Exception):
        pass

    @fc.add_classifier_rule
    def quota(exc: BaseException) -> fc.ErrorKind | None:
        return fc.ErrorKind.AUTH_DEAD if isinstance(exc, QuotaError) else None

    assert fc.classify(QuotaError()) is A
    assert fc.classify(TimeoutError()) is T, "a rule that defers changes nothing"
    assert fc.remove_classifier_rule(quota) is True
    assert fc.classify(QuotaError()) is R
    assert fc.remove_classifier_rule(quota) is False


def test_chain_rules_come_before_global_rules() -> None:
    fc.add_classifier_rule(lambda exc: fc.ErrorKind.TRANSIENT)
    assert fc.classify(ValueError(), rules=[lambda exc: fc.ErrorKind.REQUEST_SPECIFIC]) is R


def test_error_kind_values_are_the_documented_strings() -> None:
    assert [k.value for k in fc.ErrorKind] == [
        "transient",
        "auth_dead",
        "request_specific",
        "unknown",
    ]
    assert fc.ErrorKind("auth_dead") is A


def test_an_error_raised_before_sending_is_skipped_without_a_bench() -> None:
    """No status, no code, no transport failure: it says nothing of the provider's health."""
    try:
        try:
            raise KeyError("tool_choice")
        except KeyError as exc:
            raise ValueError("ChatAnthropic cannot express tool_choice='any' here") from exc
    except ValueError as outer:
        assert fc.status_of(outer) is None
        assert fc.classify(outer) is R


def test_a_global_rule_that_raises_defers_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    @fc.add_classifier_rule
    def broken(exc: BaseException) -> fc.ErrorKind | None:
        raise ZeroDivisionError("rule bug")

    secret = httpx.HTTPStatusError(
        "prompt: my password is hunter2",
        request=httpx.Request("POST", "http://x"),
        response=httpx.Response(503),
    )
    with caplog.at_level("WARNING", logger="llm_failover"):
        assert fc.classify(secret) is T, "the built-in table still answers"
        assert fc.classify(secret) is T
        assert (
            fc.classify(
                httpx.HTTPStatusError(
                    "x", request=httpx.Request("POST", "http://x"), response=httpx.Response(401)
                )
            )
            is A
        )
    warnings = [r for r in caplog.records if "classifier rule" in r.getMessage()]
    assert len(warnings) == 1, "logged once, not once per request"
    assert "ZeroDivisionError: rule bug" in warnings[0].getMessage()
    assert "hunter2" not in caplog.text, "the provider's error text never reaches the log"


def test_a_chain_rule_that_raises_defers_to_the_next_rule() -> None:
    def broken(exc: BaseException) -> fc.ErrorKind | None:
        raise RuntimeError("rule bug")

    def junk(exc: BaseException) -> fc.ErrorKind | None:
        return "not a kind"  # type: ignore[return-value]

    def next_rule(exc: BaseException) -> fc.ErrorKind | None:
        return fc.ErrorKind.AUTH_DEAD

    assert fc.classify(TimeoutError(), rules=[broken, junk, next_rule]) is A
    assert fc.classify(TimeoutError(), rules=[broken, junk]) is T


def test_a_raising_rule_never_breaks_a_request(registry: fc.HealthRegistry) -> None:
    """The flow asks the classifier for every failure; a broken rule leaves it deciding."""
    fc.add_classifier_rule(lambda exc: 1 / 0)  # type: ignore[arg-type,return-value]
    policy = fc.FailoverPolicy.build(max_retries=1)
    flow = fc.FailoverFlow(("a/1", "b/2"), policy, registry)
    flow.start()
    assert flow.failed(TimeoutError()) == fc.Attempt(index=1, key="b/2", number=1)
    assert registry.is_benched("a/1"), "the timeout counted as a transient strike"


class GoogleLike(Exception):
    """google-genai's APIError keeps an int code, a status name and the whole body."""

    def __init__(self, quota_id: str) -> None:
        super().__init__("429 RESOURCE_EXHAUSTED")
        self.code = 429
        self.status = "RESOURCE_EXHAUSTED"
        violation = {"quotaId": quota_id, "quotaMetric": "generate_content_free_tier_requests"}
        self.details = {
            "error": {
                "code": 429,
                "status": "RESOURCE_EXHAUSTED",
                "message": "You exceeded your current quota, please check your plan and billing.",
                "details": [{"@type": "google.rpc.QuotaFailure", "violations": [violation]}],
            }
        }


@pytest.mark.parametrize(
    ("quota_id", "kind"),
    [
        ("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", T),
        ("GenerateRequestsPerDayPerProjectPerModel-FreeTier", A),
    ],
)
def test_the_chained_quota_decides_before_the_wrappers_billing_words(
    quota_id: str, kind: fc.ErrorKind
) -> None:
    class WrapperRateLimitError(Exception):
        pass

    try:
        try:
            raise GoogleLike(quota_id)
        except GoogleLike as exc:
            raise WrapperRateLimitError("You exceeded your current quota") from exc
    except WrapperRateLimitError as outer:
        assert fc.classify(outer) is kind
        assert fc.classify(outer.__cause__) is kind  # type: ignore[arg-type]


# -- issue 25 / issue 24 item 3: evidence, not words -------------------------------------


class _Customer(pydantic.BaseModel):
    billing_address: str


def _validation_error() -> pydantic.ValidationError:
    try:
        _Customer.model_validate({})
    except pydantic.ValidationError as exc:
        return exc
    raise AssertionError("no validation error")


@pytest.mark.parametrize(
    "exc",
    [
        KeyError("billing"),
        ValueError("customer billing_id missing"),
        ValueError("invalid api key format in config"),
        _validation_error(),
    ],
    ids=["key-billing", "value-billing", "value-api-key", "pydantic-billing"],
)
def test_a_bare_builtin_is_never_benched_for_a_word(exc: BaseException) -> None:
    assert fc.classify(exc) is R


class ProviderError(Exception):
    """A provider SDK's own error type with no status (a plain Exception subclass)."""


def test_a_provider_typed_error_with_no_status_is_not_benched_for_a_word() -> None:
    """Weak evidence: transient (a retry, then the next model), never a bench."""
    assert fc.classify(ProviderError("Invalid API key provided")) is T
    assert fc.classify(ProviderError("prompt is too long")) is R


class RpcError(Exception):
    """grpc's RpcError: ``code()`` is a method returning a StatusCode enum member."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._name = name

    def code(self) -> Any:
        return enum.Enum("StatusCode", [self._name])[self._name]


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (RpcError("UNAVAILABLE"), T),
        (RpcError("DEADLINE_EXCEEDED"), T),
        (RpcError("UNAUTHENTICATED"), A),
        (RpcError("INVALID_ARGUMENT"), R),
    ],
    ids=lambda v: str(v),
)
def test_grpc_status_codes_are_read_from_the_code_method(
    exc: BaseException, kind: fc.ErrorKind
) -> None:
    assert fc.classify(exc) is kind


def test_azure_core_transport_errors_are_transient(provider_sim: ProviderSimulator) -> None:
    pytest.importorskip("azure.core")
    from azure.core import PipelineClient
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError
    from azure.core.rest import HttpRequest

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    refused = PipelineClient(f"http://127.0.0.1:{port}")
    with pytest.raises(ServiceRequestError) as refused_info:
        refused.send_request(HttpRequest("POST", f"http://127.0.0.1:{port}/v1", json={}))
    assert fc.classify(refused_info.value) is T

    provider_sim.set_latency("slow-model", 2.0)
    slow = PipelineClient(provider_sim.openai_base_url)
    body = {"model": "slow-model", "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(ServiceResponseError) as slow_info:
        slow.send_request(
            HttpRequest("POST", provider_sim.openai_base_url + "/chat/completions", json=body),
            read_timeout=0.2,
        )
    assert type(slow_info.value).__name__ == "ServiceResponseTimeoutError"
    assert fc.classify(slow_info.value) is T


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("code='server_error' message='The model failed to generate a response.'", T),
        ("code='rate_limit_exceeded' message='Rate limit reached for gpt-4.1.'", T),
        ("code='context_length_exceeded' message='Your input exceeds the context window.'", R),
        ("rate_limit_exceeded: Rate limit reached for requests", T),
        ("{'code': 'server_error', 'message': 'Provider disconnected'}", T),
    ],
)
def test_a_stream_events_code_decides_a_bare_value_error(text: str, kind: fc.ErrorKind) -> None:
    """LangChain raises a Responses API ``response.failed`` or ``error`` event as a bare
    ``ValueError`` carrying the event's code: the code decides."""
    assert fc.classify(ValueError(text)) is kind


@pytest.mark.parametrize("where", ["before the echo", "after the echo", "alone"])
def test_an_error_echoing_a_huge_prompt_is_read_at_its_ends(where: str) -> None:
    """What an error says stands before or after an echoed prompt: both ends are read, the
    megabytes between are not (the whole text cost seconds of the event loop)."""
    said = "You exceeded your current quota, please check your plan and billing details."
    prompt = "lorem ipsum dolor " * 3_000_000  # 54 MB
    message = {
        "before the echo": f"{said} Your prompt was: {prompt}",
        "after the echo": f"Your prompt was: {prompt} {said}",
        "alone": said,
    }[where]
    response = httpx.Response(429, request=httpx.Request("POST", "http://127.0.0.1/v1/x"))
    error = openai.RateLimitError(message, response=response, body=None)
    assert fc.classify(error) is fc.ErrorKind.AUTH_DEAD
    echo_only = openai.RateLimitError(f"Your prompt was: {prompt}", response=response, body=None)
    assert fc.classify(echo_only) is fc.ErrorKind.TRANSIENT
