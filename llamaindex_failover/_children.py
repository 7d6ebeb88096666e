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

from ._gate import GatedHandlers

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


def with_handlers(llm: LLM, manager: CallbackManager | None, *, gated: bool = False) -> LLM:
    """``llm`` for one call under the failover LLM's ``manager`` (else ``llm`` itself).

    Two things a child's own manager would miss. Handlers given to the failover LLM alone
    must see each child call once. And the legacy trace (``LlamaDebugHandler``'s tree) is
    kept per manager: LlamaIndex's engines hand the failover LLM their own manager and read
    the trace from it, so a child recording its LLM event in its own manager's trace would
    drop out of the tree (``QUERY > SYNTHESIZE`` and no ``LLM``). So the call goes to a
    shallow copy whose manager has the child's handlers and the failover LLM's, and writes
    the failover LLM's trace. A child is never changed for everyone else who uses it; the
    copy shares the child's private state (its HTTP clients), so it is the same model making
    the call; the manager dies with the copy, so nothing accumulates across calls.

    ``gated``: a sync attempt that may be abandoned; its handlers go quiet in its context
    once it is (see ``_gate``), so the copy is made whenever there are handlers at all.
    """
    own_manager = getattr(llm, "callback_manager", None)
    own = list(own_manager.handlers) if isinstance(own_manager, CallbackManager) else []
    theirs = list(manager.handlers) if manager is not None else []
    if not theirs and not (gated and own):
        return llm
    if own_manager is manager and not gated:
        return llm
    extra = [h for h in theirs if not any(h is o for o in own)]
    merged = CallbackManager()
    merged.handlers = GatedHandlers([*own, *extra]) if gated else [*own, *extra]
    if manager is not None and theirs:
        merged._trace_map = manager._trace_map
    elif isinstance(own_manager, CallbackManager):
        merged._trace_map = own_manager._trace_map
    call = llm.model_copy(update={"callback_manager": merged})
    object.__setattr__(call, "__pydantic_private__", llm.__pydantic_private__)
    return call
