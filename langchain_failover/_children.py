"""The children of a failover chat model: their keys, how one request is addressed to any
of them (tools bound in each child's own format), the chain's common profile, and the
providers ``from_specs`` builds children for."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.globals import get_llm_cache
from langchain_core.language_models import BaseChatModel, ModelProfile
from langchain_core.messages import BaseMessage
from langchain_core.runnables import Runnable, RunnableBinding

import failover_core as fc
from failover_core.drivers.bounded import bind_httpx
from failover_core.drivers.lanes import bind_hedge_lane

TOOL_KWARGS = ("tools", "tool_choice", "parallel_tool_calls", "strict")


DROPPED_KWARGS = ("model",)  # a failover model has no single model name to override


STRUCTURED_KWARGS = ("ls_structured_output_format", "structured_output_format")


@dataclass(frozen=True)
class Child:
    """One entry: its health key and the chat model behind it."""

    key: str
    model: BaseChatModel
    transport_bounded: bool = field(default=False, init=False, compare=False)
    """Its sync calls go through an httpx client whose waits follow the attempt's deadline."""

    def __post_init__(self) -> None:
        client = sync_http_client(self.model)
        bounded = client is not None and bind_httpx(client)
        object.__setattr__(self, "transport_bounded", bounded)
        for http in (client, async_http_client(self.model)):
            if http is not None:
                bind_hedge_lane(http)  # a hedge on it never queues behind its racer

    @property
    def bounded(self) -> bool:
        """Whether a sync attempt can keep its deadline in the caller's thread (no worker):
        every wait of the call is on the bounded transport (no rate limiter, no cache
        lookup that could block before it)."""
        model = self.model
        if not self.transport_bounded or model.rate_limiter is not None:
            return False
        return model.cache is False or (model.cache is None and get_llm_cache() is None)


_BOUNDABLE = ("langchain_openai.", "langchain_anthropic.")


def sync_http_client(model: BaseChatModel) -> Any:
    """The httpx client every sync call of ``model`` goes through, or ``None`` when unknown:
    langchain-openai's and langchain-anthropic's own chat models (not a subclass that
    overrides how they call)."""
    cls = type(model)
    for method in ("_generate", "_stream"):
        if not getattr(getattr(cls, method, None), "__module__", "").startswith(_BOUNDABLE):
            return None
    root = getattr(model, "root_client", None)
    if root is not None:  # langchain-openai: calls go through root_client or its completions
        client = getattr(model, "client", None)
        if client is not None and getattr(client, "_client", None) is not root:
            return None
        return getattr(root, "_client", None)
    if cls.__module__.startswith("langchain_anthropic."):
        sdk = getattr(model, "_client", None)
        return getattr(sdk, "_client", None)
    return None


def async_http_client(model: BaseChatModel) -> Any:
    """The httpx client of ``model``'s async calls (langchain-openai, langchain-anthropic),
    or ``None``."""
    root = getattr(model, "root_async_client", None)
    if root is not None:
        return getattr(root, "_client", None)
    if type(model).__module__.startswith("langchain_anthropic."):
        sdk = getattr(model, "_async_client", None)
        return getattr(sdk, "_client", None)
    return None


@dataclass(frozen=True, slots=True)
class Request:
    """One call, ready for any child: the messages, the call kwargs and the tools to bind."""

    messages: list[BaseMessage]
    call: dict[str, Any]
    tools: dict[str, Any]

    def target(self, model: BaseChatModel) -> tuple[Runnable[Any, Any], dict[str, Any]]:
        """What to call on ``model`` and with which kwargs: the model itself with the tools
        bound in its own format.

        A child's ``bind_tools`` returns a ``RunnableBinding``; the model behind it is
        called directly with the binding's kwargs, because ``RunnableBinding.invoke``
        merges in the enclosing config and its child run would not nest under ours.
        """
        if not self.tools.get("tools"):
            return model, self.call
        options = {k: v for k, v in self.tools.items() if k != "tools"}
        binding = model.bind_tools(self.tools["tools"], **options)
        if (
            isinstance(binding, RunnableBinding)
            and binding.bound is model
            and not binding.config
            and not binding.config_factories
        ):
            return model, {**binding.kwargs, **self.call}
        return binding, self.call


def key_of(model: BaseChatModel) -> str:
    """``provider/model`` from the model's LangSmith params (``openai/gpt-4o-mini``)."""
    params = model._get_ls_params()
    provider = str(params.get("ls_provider") or model._llm_type)
    name = params.get("ls_model_name")
    return f"{provider}/{name}" if name else provider


def with_headers(model: BaseChatModel) -> BaseChatModel:
    """A pool member that reports its HTTP response headers (the rate limits), so the pool
    can route around a limit before the 429: a copy of a ``ChatOpenAI``-like model with
    ``include_response_headers`` on; any other model as it is."""
    fields = type(model).model_fields
    if "include_response_headers" in fields and not model.include_response_headers:  # type: ignore[attr-defined]  # a ChatOpenAI-like field
        return model.model_copy(update={"include_response_headers": True})
    return model


def response_headers(message: BaseMessage) -> Any:
    """The HTTP headers a child put in an answer's ``response_metadata``, if any."""
    metadata = getattr(message, "response_metadata", None)
    return metadata.get("headers") if isinstance(metadata, dict) else None


def common_profile(models: Sequence[BaseChatModel]) -> ModelProfile | None:
    """The chain's common ground: the smallest limits any child reports, and a capability
    only where every child has it."""
    profiles = [m.profile for m in models]
    known = [p for p in profiles if p]
    if not known:
        return None
    merged: dict[str, Any] = {"name": "failover"}
    for limit in ("max_input_tokens", "max_output_tokens"):
        values = [v for p in known if isinstance(v := p.get(limit), int)]
        if values:
            merged[limit] = min(values)
    flags = {k for p in known for k, v in p.items() if isinstance(v, bool)}
    for flag in sorted(flags):
        merged[flag] = all(p is not None and p.get(flag) is True for p in profiles)
    return cast(ModelProfile, merged)


providers: fc.ProviderRegistry[BaseChatModel] = fc.ProviderRegistry()


def _init_chat_model(model: str, **kwargs: Any) -> BaseChatModel:
    try:
        from langchain.chat_models import init_chat_model
    except ImportError as exc:
        raise fc.SpecError(
            "from_specs builds models with LangChain's init_chat_model, from the 'langchain' "
            "package: pip install langchain, plus each provider's package "
            "(e.g. langchain-openai), or build the models yourself and pass them as models=[...]"
        ) from exc
    built = init_chat_model(model, **kwargs)
    if not isinstance(built, BaseChatModel):
        raise fc.SpecError(f"init_chat_model built {type(built).__name__}, not a chat model")
    return built


def register_provider(provider: str, factory: Callable[..., BaseChatModel]) -> None:
    """Build ``provider:...`` specs with ``factory(model_name, **kwargs)`` in ``from_specs``.

    Without a registration, ``from_specs`` uses LangChain's ``init_chat_model``.
    """
    providers.register(provider, factory)


def direct_kwargs(kwargs: dict[str, Any]) -> tuple[list[str] | None, dict[str, Any]]:
    """Split ``stop`` off and drop what only a model run's callbacks read."""
    rest = {k: v for k, v in kwargs.items() if k not in STRUCTURED_KWARGS and k != "stop"}
    return kwargs.get("stop"), rest


def _with_init_chat_model(provider: str, model: str, **kwargs: Any) -> BaseChatModel:
    kwargs.setdefault("max_retries", 0)  # the failover model is the one retry layer
    return _init_chat_model(model, model_provider=provider, **kwargs)


providers.register("*", _with_init_chat_model)
