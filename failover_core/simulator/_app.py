"""The simulator's ASGI app: OpenAI chat completions and Anthropic messages, with faults."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ._faults import Api, Fault, RecordedRequest, SimulatorState
from ._payloads import Reply, error_body, next_id, plan_reply, prefill_refusal

__all__ = ["build_app"]


class _Disconnect(Exception):
    """Raised inside a streaming body to drop the connection mid-response."""


_NO_REPLY = Reply(text="")
# An event cut off in the middle of its JSON: what a broken proxy or provider sends.
_MALFORMED = 'data: {"id": "chatcmpl-sim", "choices": [{"delta": {"content": "gar\n\n'


def _usage(body: Mapping[str, Any], reply: Reply) -> tuple[int, int]:
    prompt = sum(len(json.dumps(m).split()) for m in body.get("messages") or [])
    completion = max(
        1, len(reply.text.split()) + (len(reply.arguments) // 4 if reply.tool_name else 0)
    )
    return prompt, completion


def _error_response(api: Api, fault: Fault, *, close: bool = False) -> JSONResponse:
    headers = {"x-request-id": next_id("req_sim_")}
    if close:
        headers["connection"] = "close"
    if fault.retry_after is not None:
        headers["retry-after"] = f"{fault.retry_after:g}"
    return JSONResponse(error_body(api, fault), status_code=fault.status, headers=headers)


def _sse(data: Mapping[str, Any] | str, event: str | None = None) -> str:
    payload = data if isinstance(data, str) else json.dumps(data)
    return (f"event: {event}\n" if event else "") + f"data: {payload}\n\n"


async def _keepalives(api: Api, seconds: float, every: float) -> AsyncIterator[str]:
    """Keep-alives only, for ``seconds``: what a stalled provider sends to look alive."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        await asyncio.sleep(min(every, left))
        yield ": keep-alive\n\n" if api == "openai" else _sse({"type": "ping"}, "ping")


def _stalls_at(fault: Fault | None, sent: int) -> float | None:
    """Seconds of keep-alives before content chunk ``sent`` (0-based), if any."""
    if fault is None:
        return None
    if fault.stall_first_token is not None and sent == 0:
        return fault.stall_first_token
    if fault.stall_after_chunks is not None and sent == fault.stall_after_chunks:
        return fault.stall
    return None


# -- OpenAI ------------------------------------------------------------------------------


def _openai_message(reply: Reply) -> dict[str, Any]:
    if reply.tool_name:
        return {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [
                {
                    "id": next_id("call_sim_"),
                    "type": "function",
                    "function": {"name": reply.tool_name, "arguments": reply.arguments},
                }
            ],
        }
    return {"role": "assistant", "content": reply.text, "refusal": None}


def _openai_json(
    model: str, body: Mapping[str, Any], reply: Reply, refuse: bool = False
) -> dict[str, Any]:
    prompt, completion = _usage(body, reply)
    if refuse:  # a content filter's answer: a 200 with no content
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        finish = "content_filter"
    else:
        message, finish = _openai_message(reply), "tool_calls" if reply.tool_name else "stop"
    return {
        "id": next_id("chatcmpl-sim-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


async def _openai_stream(
    model: str, body: Mapping[str, Any], reply: Reply, fault: Fault | None, delay: float
) -> AsyncIterator[str]:
    cid, created = next_id("chatcmpl-sim-"), int(time.time())

    def chunk(delta: Mapping[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return _sse(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [choice],
            }
        )

    yield chunk({"role": "assistant", "content": ""})
    if reply.tool_name:
        call_id = next_id("call_sim_")
        args = reply.arguments
        pieces = [args[i : i + 12] for i in range(0, len(args), 12)] or [""]
        deltas: list[dict[str, Any]] = [
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": reply.tool_name, "arguments": ""},
                    }
                ]
            }
        ]
        deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": p}}]} for p in pieces]
    else:
        deltas = [{"content": piece} for piece in reply.pieces()]
    if fault is not None and fault.refuse:
        yield chunk({}, "content_filter")
        yield _sse("[DONE]")
        return
    for sent, delta in enumerate(deltas):
        if fault is not None and fault.after_chunks is not None and sent >= fault.after_chunks:
            if fault.disconnect:
                raise _Disconnect
            if fault.malformed:  # garbage from the provider: an event that is not JSON
                yield _sse('{"id": "chatcmpl-sim", "choices": [{"delta": {"content": "x')
                return
            yield _sse(error_body("openai", fault))
            return
        if fault is not None and fault.malformed_after == sent:
            yield _MALFORMED
        stall = _stalls_at(fault, sent)
        if stall is not None and fault is not None:
            async for keepalive in _keepalives("openai", stall, fault.keepalive):
                yield keepalive
            if fault.disconnect:  # the stall ends in a closed connection
                raise _Disconnect
        if delay:
            await asyncio.sleep(delay)
        yield chunk(delta)
    yield chunk({}, "tool_calls" if reply.tool_name else "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        prompt, completion = _usage(body, reply)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        yield _sse(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
        )
    if fault is None or not fault.no_done:
        yield _sse("[DONE]")


# -- Anthropic ---------------------------------------------------------------------------


def _anthropic_blocks(reply: Reply) -> list[dict[str, Any]]:
    if reply.tool_name:
        return [
            {
                "type": "tool_use",
                "id": next_id("toolu_sim_"),
                "name": reply.tool_name,
                "input": dict(reply.tool_args or {}),
            }
        ]
    return [{"type": "text", "text": reply.text}]


def _anthropic_json(
    model: str, body: Mapping[str, Any], reply: Reply, refuse: bool = False
) -> dict[str, Any]:
    prompt, completion = _usage(body, reply)
    stop = "refusal" if refuse else "tool_use" if reply.tool_name else "end_turn"
    return {
        "id": next_id("msg_sim_"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [] if refuse else _anthropic_blocks(reply),
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": prompt, "output_tokens": completion},
    }


async def _anthropic_stream(
    model: str, body: Mapping[str, Any], reply: Reply, fault: Fault | None, delay: float
) -> AsyncIterator[str]:
    prompt, completion = _usage(body, reply)
    start = {
        "type": "message_start",
        "message": {
            "id": next_id("msg_sim_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": 1},
        },
    }
    yield _sse(start, "message_start")
    if reply.tool_name:
        block: dict[str, Any] = {
            "type": "tool_use",
            "id": next_id("toolu_sim_"),
            "name": reply.tool_name,
            "input": {},
        }
        args = reply.arguments
        deltas = [
            {"type": "input_json_delta", "partial_json": args[i : i + 12]}
            for i in range(0, len(args), 12)
        ]
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in reply.pieces()]
    if fault is not None and fault.refuse:
        deltas = []
    yield _sse(
        {"type": "content_block_start", "index": 0, "content_block": block}, "content_block_start"
    )
    for sent, delta in enumerate(deltas):
        if fault is not None and fault.after_chunks is not None and sent >= fault.after_chunks:
            if fault.disconnect:
                raise _Disconnect
            yield _sse(error_body("anthropic", fault), "error")
            return
        if fault is not None and fault.malformed_after == sent:
            yield "event: content_block_delta\n" + _MALFORMED
        stall = _stalls_at(fault, sent)
        if stall is not None and fault is not None:
            async for keepalive in _keepalives("anthropic", stall, fault.keepalive):
                yield keepalive
            if fault.disconnect:
                raise _Disconnect
        if delay:
            await asyncio.sleep(delay)
        yield _sse(
            {"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"
        )
    yield _sse({"type": "content_block_stop", "index": 0}, "content_block_stop")
    stop = "tool_use" if reply.tool_name else "end_turn"
    if fault is not None and fault.refuse:
        stop = "refusal"
    yield _sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop, "stop_sequence": None},
            "usage": {"output_tokens": completion},
        },
        "message_delta",
    )
    if fault is None or not fault.no_done:
        yield _sse({"type": "message_stop"}, "message_stop")


async def _watched(
    events: AsyncIterator[str], state: SimulatorState, model: str
) -> AsyncIterator[str]:
    """``events``, counting a client that leaves before the end as a disconnect."""
    try:
        async for event in events:
            yield event
    except (asyncio.CancelledError, GeneratorExit):
        state.record_disconnect(model)
        raise


async def _hold(request: Request, seconds: float) -> bool:
    """Send nothing for ``seconds``; True if the client left meanwhile."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        await asyncio.sleep(min(0.02, left))
        if await request.is_disconnected():
            return True
    return False


async def _dropped() -> AsyncIterator[str]:
    # Headers go out, then the connection drops before a byte of body: a broken transport.
    raise _Disconnect
    yield ""  # pragma: no cover - makes this an async generator


class _Reset(Response):
    """No response at all: the connection is reset before a byte of it (no headers)."""

    def __init__(self) -> None:
        super().__init__(status_code=500)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # uvicorn hands the app its connection's own receive: abort that transport (RST).
        transport = getattr(getattr(receive, "__self__", None), "transport", None)
        if transport is not None:
            transport.abort()
            return
        raise _Disconnect  # another server: the best we can do is an error before headers


def _prefilled(api: Api, body: Mapping[str, Any], mode: str | None) -> str | None:
    """The model's prefill mode when this OpenAI-wire request ends with the assistant's
    own message (a continuation asked for), else ``None``."""
    messages = body.get("messages")
    if api != "openai" or mode is None or not isinstance(messages, list) or not messages:
        return None
    last = messages[-1]
    return mode if isinstance(last, Mapping) and last.get("role") == "assistant" else None


# -- routes ------------------------------------------------------------------------------


async def _control_body(request: Request, *, empty_ok: bool = False) -> dict[str, Any] | Response:
    """A control request's JSON object, or a 400 saying what is wrong with the body."""
    raw = await request.body()
    if not raw.strip() and empty_ok:
        return {}
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        return JSONResponse({"error": f"the body must be a JSON object: {exc}"}, 400)
    if not isinstance(data, dict):
        kind = "null" if data is None else type(data).__name__
        return JSONResponse({"error": f"the body must be a JSON object, got {kind}"}, 400)
    return data


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")


def _model_name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"model must be a non-empty string, got {value!r}")
    return value


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    return float(value)


def build_app(state: SimulatorState) -> Starlette:
    """The ASGI app serving both APIs over ``state``."""

    async def serve(request: Request, api: Api) -> Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error_response(api, Fault(status=400, message="Body is not JSON."))
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return _error_response(api, Fault(status=400, message="A 'model' is required."))
        model, stream = body["model"], bool(body.get("stream"))
        if api == "anthropic" and (refusal := prefill_refusal(body)) is not None:
            return _error_response(api, Fault(status=400, message=refusal))
        had_credentials = bool(
            request.headers.get("authorization") or request.headers.get("x-api-key")
        )
        fault, latency, chunk_delay = state.admit(
            RecordedRequest(api, model, stream, body, had_credentials, time.monotonic())
        )
        limited, limit_headers = state.rate_limits.take(api, model, _usage(body, _NO_REPLY)[0])
        if limited:  # a provider answers a 429 at once, with its limits in the headers
            over = Fault(status=429, message=f"Rate limit reached for {model} (simulated).")
            limit_headers["x-request-id"] = next_id("req_sim_")
            return JSONResponse(error_body(api, over), status_code=429, headers=limit_headers)
        wait = latency + (fault.latency if fault else 0.0)
        if wait:
            await asyncio.sleep(wait)
        if fault is not None and fault.reset:
            return _Reset()
        prefill = _prefilled(api, body, state.prefill_mode(model))
        if prefill == "reject" and fault is None:
            rejected = Fault(status=400, message="Assistant prefill is not supported.")
            return _error_response(api, rejected)
        if fault is not None and fault.hang is not None:
            if await _hold(request, fault.hang):
                state.record_disconnect(model)
                return Response(status_code=499)  # nobody is listening
            return _error_response(api, fault, close=True)  # the provider gives up
        if fault is not None and fault.slow and not stream:
            late = fault.stall_first_token if fault.stall_first_token is not None else fault.stall
            if late and await _hold(request, late):
                state.record_disconnect(model)
                return Response(status_code=499)
            fault = None  # a slow answer, but an answer
        if (
            fault is not None
            and not fault.slow
            and not fault.answers
            and not (stream and fault.after_chunks is not None)
        ):
            if fault.disconnect:
                return StreamingResponse(_dropped(), media_type="application/json")
            return _error_response(api, fault)
        reply = plan_reply(api, model, body, continue_prefill=prefill == "continue")
        if not stream:
            refuse = fault is not None and fault.refuse
            payload = (_openai_json if api == "openai" else _anthropic_json)(
                model, body, reply, refuse
            )
            headers = {"x-request-id": next_id("req_sim_"), **limit_headers}
            return JSONResponse(payload, headers=headers)
        events = (_openai_stream if api == "openai" else _anthropic_stream)(
            model, body, reply, fault, chunk_delay
        )
        if fault is not None and fault.slow:
            events = _watched(events, state, model)
        return StreamingResponse(events, media_type="text/event-stream", headers=limit_headers)

    async def openai_chat(request: Request) -> Response:
        return await serve(request, "openai")

    async def anthropic_messages(request: Request) -> Response:
        return await serve(request, "anthropic")

    async def models(request: Request) -> Response:
        names = sorted(state.call_counts())
        return JSONResponse(
            {"object": "list", "data": [{"id": n, "object": "model"} for n in names]}
        )

    async def control_state(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def control_faults(request: Request) -> Response:
        data = await _control_body(request)
        if isinstance(data, Response):
            return data
        try:
            if "model" not in data:
                raise ValueError("a fault needs its model")
            model = _model_name(data.pop("model"))
            state.add_fault(model, Fault.from_dict(data))
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(state.snapshot())

    async def control_latency(request: Request) -> Response:
        data = await _control_body(request)
        if isinstance(data, Response):
            return data
        try:
            if "model" not in data:
                raise ValueError("a latency needs its model")
            p99, seed = data.get("p99"), data.get("seed")
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                raise ValueError(f"seed must be a whole number, got {seed!r}")
            state.set_latency(
                _model_name(data["model"]),
                _seconds(data.get("seconds", 0.0), "seconds"),
                _seconds(data.get("chunk_delay", 0.0), "chunk_delay"),
                p99=None if p99 is None else _seconds(p99, "p99"),
                seed=seed,
            )
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(state.snapshot())

    async def control_rate_limit(request: Request) -> Response:
        data = await request.json()
        try:
            tokens = data.get("tokens")
            state.rate_limits.set(
                str(data["model"]),
                int(data["requests"]),
                None if tokens is None else int(tokens),
                float(data.get("window", 60.0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(state.snapshot())

    async def control_reset(request: Request) -> Response:
        state.reset()
        return JSONResponse(state.snapshot())

    async def control_clear(request: Request) -> Response:
        data = await _control_body(request, empty_ok=True)
        if isinstance(data, Response):
            return data
        model = data.get("model")
        if model is not None and not isinstance(model, str):
            return JSONResponse({"error": f"model must be a string, got {model!r}"}, 400)
        state.clear(model)
        return JSONResponse(state.snapshot())

    return Starlette(
        routes=[
            Route("/v1/chat/completions", openai_chat, methods=["POST"]),
            Route("/v1/messages", anthropic_messages, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/_sim/state", control_state, methods=["GET"]),
            Route("/_sim/faults", control_faults, methods=["POST"]),
            Route("/_sim/latency", control_latency, methods=["POST"]),
            Route("/_sim/reset", control_reset, methods=["POST"]),
            Route("/_sim/ratelimit", control_rate_limit, methods=["POST"]),
            Route("/_sim/clear", control_clear, methods=["POST"]),
        ]
    )
