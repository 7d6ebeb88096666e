"""What the simulated providers answer: replies, tool calls, JSON from a schema, errors.

Replies are deterministic and name the model that produced them, so a test (or a person
watching the demo) can tell who served a request from the text alone.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._faults import Api, Fault

__all__ = ["Reply", "error_body", "plan_reply", "sample_from_schema"]

_ids = itertools.count(1)


def next_id(prefix: str) -> str:
    return f"{prefix}{next(_ids):06d}"


# A quote opens after a non-word character and closes before one, so the apostrophes in
# "What's" or "don't" are not quotes: "What's the weather in 'Paris'?" quotes Paris.
_QUOTED = re.compile(r"(?<!\w)'([^']+?)'(?!\w)|(?<!\w)\"([^\"]+?)\"(?!\w)")


class Hints:
    """Values lifted from the prompt, so tool arguments echo it like a model would:
    integers fill integer fields and quoted phrases fill string fields, in order."""

    def __init__(self, text: str = "") -> None:
        self._ints = [int(m) for m in re.findall(r"(?<![\w.])-?\d+(?![\w.])", text)]
        self._quotes = [a or b for a, b in _QUOTED.findall(text)]

    def integer(self) -> int | None:
        return self._ints.pop(0) if self._ints else None

    def string(self) -> str | None:
        return self._quotes.pop(0) if self._quotes else None


def sample_from_schema(
    schema: Mapping[str, Any],
    defs: Mapping[str, Any] | None = None,
    hints: Hints | None = None,
) -> Any:
    """A small value that satisfies a JSON schema of the shapes tool and output schemas use."""
    defs = defs if defs is not None else schema.get("$defs", schema.get("definitions", {}))
    hints = hints or Hints()
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return sample_from_schema(defs.get(name, {}), defs, hints)
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key, []) if o.get("type") != "null"]
        if options:
            return sample_from_schema(options[0], defs, hints)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind == "object":
        props = schema.get("properties", {})
        return {name: sample_from_schema(sub, defs, hints) for name, sub in props.items()}
    if kind == "array":
        return [sample_from_schema(schema.get("items", {}), defs, hints)]
    if kind == "integer":
        hinted = hints.integer()
        low = schema.get("minimum", schema.get("exclusiveMinimum", -(10**9)))
        high = schema.get("maximum", schema.get("exclusiveMaximum", 10**9))
        if hinted is not None and low <= hinted <= high:
            return hinted
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    hinted_text = hints.string()
    if hinted_text is not None:
        return hinted_text
    return str(schema.get("title") or schema.get("description") or "sample")[:40]


@dataclass(frozen=True)
class Reply:
    """The answer to one request: text, or one tool call."""

    text: str
    tool_name: str | None = None
    tool_args: Mapping[str, Any] | None = None

    @property
    def arguments(self) -> str:
        return json.dumps(self.tool_args or {})

    def pieces(self) -> list[str]:
        """The text split the way a provider streams it: word by word."""
        words = self.text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, Mapping):
                if block.get("type") == "tool_result":
                    parts.append(_content_text(block.get("content")))
                elif isinstance(block.get("text"), str):
                    parts.append(block["text"])
        return " ".join(parts)
    return ""


def _last_turn(messages: list[Mapping[str, Any]]) -> tuple[str, bool]:
    """The last message's text and whether it carries a tool result."""
    if not messages:
        return "", False
    last = messages[-1]
    content = last.get("content")
    is_tool = last.get("role") == "tool" or (
        isinstance(content, list)
        and any(isinstance(b, Mapping) and b.get("type") == "tool_result" for b in content)
    )
    return _content_text(content), is_tool


@dataclass(frozen=True)
class _Tool:
    name: str
    schema: Mapping[str, Any]
    description: str


def _tools(api: Api, body: Mapping[str, Any]) -> list[_Tool]:
    out = []
    for tool in body.get("tools") or []:
        if api == "openai" and tool.get("type") == "function":
            fn = tool.get("function", {})
            out.append(
                _Tool(str(fn.get("name")), fn.get("parameters") or {}, fn.get("description") or "")
            )
        elif api == "anthropic" and "name" in tool:
            out.append(
                _Tool(
                    str(tool["name"]), tool.get("input_schema") or {}, tool.get("description") or ""
                )
            )
    return out


def _forced_tool(api: Api, choice: Any) -> tuple[str | None, bool, bool]:
    """(named tool, tools allowed, a tool call required) from a ``tool_choice``."""
    if choice is None:
        return None, True, False
    if isinstance(choice, str):  # OpenAI: "auto", "none", "required"; LangChain's "any"
        return None, choice != "none", choice in ("required", "any")
    if api == "openai":
        return choice.get("function", {}).get("name"), True, True
    kind = choice.get("type")
    if kind == "none":
        return None, False, False
    return (choice.get("name") if kind == "tool" else None), True, kind in ("any", "tool")


# Words too common to say which tool a prompt is about.
_STOP_WORDS = "the and for with what whats this that from into about get set use please tell \
give does how who why when where which you your are was were has have can will"
_STOP = frozenset(_STOP_WORDS.split())


def _words(text: str) -> set[str]:
    """Content words of a prompt, a tool name (snake_case, camelCase) or a description."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    words = set()
    for word in re.findall(r"[a-z0-9]+", spaced.lower()):
        if len(word) > 2 and word not in _STOP:
            words.add(word[:-1] if word.endswith("s") and len(word) > 3 else word)
    return words


def _called(messages: list[Mapping[str, Any]]) -> set[str]:
    """Names of the tools the conversation has called already."""
    names = set()
    for message in messages:
        for call in message.get("tool_calls") or []:  # OpenAI
            names.add(str(call.get("function", {}).get("name")))
        content = message.get("content")
        if isinstance(content, list):  # Anthropic
            for block in content:
                if isinstance(block, Mapping) and block.get("type") == "tool_use":
                    names.add(str(block.get("name")))
    return names


def _pick_tool(tools: list[_Tool], prompt: str, called: set[str]) -> _Tool:
    """The tool a model would call: one not called yet, the one whose name (then
    description) shares the most words with the prompt; on a tie, the first offered."""
    fresh = [t for t in tools if t.name not in called] or tools
    asked = _words(prompt)

    def relevance(tool: _Tool) -> tuple[int, int]:
        return len(_words(tool.name) & asked), len(_words(tool.description) & asked)

    return max(fresh, key=relevance)  # max keeps the first of equals


def _user_text(messages: list[Mapping[str, Any]]) -> str:
    """The last user message's text (not a tool result): what the conversation is about."""
    for message in reversed(messages):
        if message.get("role") != "user":
            continue
        text = _content_text(
            [
                b
                for b in message["content"]
                if isinstance(b, Mapping) and b.get("type") != "tool_result"
            ]
            if isinstance(message.get("content"), list)
            else message.get("content")
        )
        if text:
            return text
    return ""


def plan_reply(
    api: Api, model: str, body: Mapping[str, Any], *, continue_prefill: bool = False
) -> Reply:
    """Decide the answer: a tool call when tools are offered and no tool result is in yet
    (or at every turn when the request requires one), JSON for a JSON-schema response
    format, otherwise a line of text naming the model.

    An Anthropic request whose last message is the assistant's (a prefill) is continued:
    the reply is the rest of the answer that prefill began (see :func:`_continuation`);
    on the OpenAI wire too with ``continue_prefill`` (a model that continues prefills).
    """
    messages = list(body.get("messages") or [])
    prefilled = api == "anthropic" or continue_prefill
    if prefilled and messages and messages[-1].get("role") == "assistant":
        prefill = _content_text(messages[-1].get("content"))
        return Reply(text=_continuation(model, {**body, "messages": messages[:-1]}, prefill))
    text, after_tool = _last_turn(messages)
    tools = _tools(api, body)
    named, allowed, required = _forced_tool(api, body.get("tool_choice"))
    if tools and allowed and (required or not after_tool):
        asked = text if not after_tool else _user_text(messages)
        tool = next((t for t in tools if t.name == named), None) or _pick_tool(
            tools, asked, _called(messages)
        )
        args = sample_from_schema(tool.schema, hints=Hints(asked))
        return Reply(text="", tool_name=tool.name, tool_args=args)
    fmt = body.get("response_format") or {}
    if api == "openai" and fmt.get("type") == "json_schema":
        schema = fmt.get("json_schema", {}).get("schema", {})
        return Reply(text=json.dumps(sample_from_schema(schema, hints=Hints(text))))
    if api == "openai" and fmt.get("type") == "json_object":
        return Reply(text=json.dumps({"model": model, "answer": "ok"}))
    prefix = "tool said" if after_tool else "you said"
    snippet = " ".join(text.split())[:80]
    return Reply(text=f"[{model}] {prefix}: {snippet}" if snippet else f"[{model}] hello")


_NAMED = re.compile(r"\[([^\]\s]+)\] ")


def _continuation(model: str, body: Mapping[str, Any], prefill: str) -> str:
    """The rest of an answer begun by ``prefill``, as the Messages API continues one.

    The simulator's answers start with the answering model's name (``[gpt-4o-mini] ...``):
    the rest is that model's whole answer to the same messages minus the prefill, so a
    stream broken on one model and continued on another reads as the unbroken answer.
    A prefill the simulator did not write is continued with a short sentence naming
    ``model``. The continuation never repeats the prefill.
    """
    named = _NAMED.match(prefill)
    if named is not None:
        whole = plan_reply("openai", named.group(1), body).text
        if whole.startswith(prefill) and len(whole) > len(prefill):
            return whole[len(prefill) :]
    return f" [{model}] continued."


def prefill_refusal(body: Mapping[str, Any]) -> str | None:
    """The Messages API's 400 for a prefill ending in whitespace, or ``None``."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], Mapping):
        return None
    last = messages[-1]
    if last.get("role") != "assistant":
        return None
    text = _content_text(last.get("content"))
    if text and text != text.rstrip():
        return "messages: final assistant content cannot end with trailing whitespace"
    return None


_DEFAULTS: Mapping[int, tuple[str, str, str]] = {
    # status: (openai type/code, anthropic type, message)
    400: ("invalid_request_error", "invalid_request_error", "Invalid request."),
    401: ("invalid_api_key", "authentication_error", "Invalid API key."),
    402: ("billing_error", "billing_error", "Payment required."),
    403: ("permission_denied", "permission_error", "Permission denied."),
    404: ("model_not_found", "not_found_error", "The model does not exist."),
    408: ("timeout", "timeout_error", "Request timed out."),
    413: ("request_too_large", "request_too_large", "Request too large."),
    422: ("invalid_request_error", "invalid_request_error", "Unprocessable request."),
    429: ("rate_limit_exceeded", "rate_limit_error", "Rate limit reached."),
    500: ("server_error", "api_error", "Internal server error."),
    502: ("server_error", "api_error", "Bad gateway."),
    503: ("server_error", "overloaded_error", "Service unavailable."),
    504: ("server_error", "api_error", "Gateway timeout."),
    529: ("server_error", "overloaded_error", "Overloaded."),
}


def error_body(api: Api, fault: Fault) -> dict[str, Any]:
    """The provider's JSON error body for a fault."""
    default_code, anthropic_type, default_message = _DEFAULTS.get(
        fault.status,
        (
            "server_error" if fault.status >= 500 else "invalid_request_error",
            "api_error" if fault.status >= 500 else "invalid_request_error",
            "Simulated failure.",
        ),
    )
    message = fault.message or default_message
    if api == "anthropic":
        return {
            "type": "error",
            "error": {"type": fault.type or fault.code or anthropic_type, "message": message},
        }
    error_type = fault.type or (
        "invalid_request_error" if fault.status < 500 and fault.status != 429 else default_code
    )
    if fault.status == 429 and not fault.type:
        error_type = "insufficient_quota" if fault.code == "insufficient_quota" else "requests"
    return {
        "error": {
            "message": message,
            "type": error_type,
            "param": None,
            "code": fault.code or default_code,
        }
    }
