"""The children of a failover LLM: their keys, a tool request replayed on each child, and
the per-call copy that lets handlers given to the failover LLM see each child call once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.types import ChatMessage, LLMMetadata
from llama_index.core.callbacks import CallbackManager
from llama_index.core.llms.llm import LLM

import failover_core as fc

if TYPE_CHECKING:
    from llama_index.core.tools import BaseTool


class ToolsUnsupportedError(Exception):
    """A child that is not a function-calling LLM was asked to use tools (skipped, not benched)."""


def tools_unsupported(exc: BaseException) -> fc.ErrorKind | None:
    return fc.ErrorKind.REQUEST_SPECIFIC if isinstance(exc, ToolsUnsupportedError) else None


@dataclass(frozen=True)
class Child:
    key: str
    llm: LLM


@dataclass(frozen=True)
class Tools:
    """A tool request, replayed on each child through its own ``*_chat_with_tools``."""

    tools: Sequence[BaseTool]
    user_msg: str | ChatMessage | None
    chat_history: list[ChatMessage] | None
    verbose: bool
    allow_parallel_tool_calls: bool
    tool_required: bool
    kwargs: Mapping[str, Any]

    def call_kwargs(self) -> dict[str, Any]:
        return {
            "user_msg": self.user_msg,
            "chat_history": self.chat_history,
            "verbose": self.verbose,
            "allow_parallel_tool_calls": self.allow_parallel_tool_calls,
            "tool_required": self.tool_required,
            **self.kwargs,
        }


def provider_of(llm: LLM) -> str:
    parts = type(llm).__module__.split(".")
    for prefix in (["llama_index", "llms"], ["llama_index", "core", "llms"]):
        if parts[: len(prefix)] == prefix and len(parts) > len(prefix):
            return parts[len(prefix)]
    return type(llm).__name__.lower().removesuffix("llm") or "llm"


def key_of(llm: LLM) -> str:
    """``provider/model`` for a LlamaIndex LLM (``openai/gpt-4o-mini`` for ``OpenAI``)."""
    name = getattr(llm, "model", None)
    if not isinstance(name, str) or not name:
        try:
            name = llm.metadata.model_name
        except Exception:  # metadata raises for models some integrations do not know
            name = None
    provider = provider_of(llm)
    return f"{provider}/{name}" if name else provider


def metadata_of(llm: LLM) -> LLMMetadata | None:
    try:
        return llm.metadata
    except Exception:  # one child's broken metadata must not break the failover LLM
        return None


def with_handlers(llm: LLM, handlers: Sequence[Any]) -> LLM:
    """``llm`` for one call, reporting also to ``handlers`` it lacks (else ``llm`` itself).

    Handlers given to the failover LLM alone must see each child call once, and a child
    must not be changed for everyone else who uses it: so the call goes to a shallow copy
    with a merged manager. The copy shares the child's private state (its HTTP clients),
    so it is the same model making the call; the manager dies with the copy, so nothing
    accumulates across calls.
    """
    if not handlers:
        return llm
    manager = getattr(llm, "callback_manager", None)
    own = list(manager.handlers) if isinstance(manager, CallbackManager) else []
    extra = [h for h in handlers if not any(h is o for o in own)]
    if not extra:
        return llm
    merged = CallbackManager()
    merged.handlers = [*own, *extra]
    call = llm.model_copy(update={"callback_manager": merged})
    object.__setattr__(call, "__pydantic_private__", llm.__pydantic_private__)
    return call
