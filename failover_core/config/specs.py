"""Chains from spec strings: ``"openai:gpt-4o-mini"``, ``"anthropic/claude-sonnet-4-5"``.

Each adapter keeps a :class:`ProviderRegistry` of factories that build its framework's
model for a provider; a ``"*"`` factory serves any provider (LangChain's
``init_chat_model`` does). A comma-separated string is a chain and is spliced in.

Pools: ``"openai:gpt-4o | azure_openai:gpt-4o"`` (members joined by ``|``) or a nested
list, ``[["openai:gpt-4o", "azure_openai:gpt-4o"], "anthropic:claude-haiku-4-5"]``, is one
:class:`~failover_core.Pool` entry whose members are keyed ``provider/model#n``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .._errors import SpecError
from ..pool.pool import Pool

__all__ = ["ModelSpec", "ProviderRegistry", "parse_spec", "split_pooled", "split_specs"]

M = TypeVar("M")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A parsed spec. ``key`` (``provider/model``) is the model's health key."""

    provider: str
    model: str
    text: str

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}"


def parse_spec(text: str) -> ModelSpec:
    """Parse ``provider:model`` or ``provider/model``; the model part may contain slashes."""
    spec = text.strip()
    cut = spec.find(":")
    if cut < 0:
        cut = spec.find("/")
    if cut <= 0 or cut == len(spec) - 1:
        raise SpecError(f"bad model spec {text!r}: expected 'provider:model' or 'provider/model'")
    provider, model = spec[:cut].strip().lower(), spec[cut + 1 :].strip()
    if not provider or not model or any(c.isspace() for c in provider + model):
        raise SpecError(f"bad model spec {text!r}: expected 'provider:model' or 'provider/model'")
    return ModelSpec(provider=provider, model=model, text=spec)


def split_specs(specs: str | Iterable[str]) -> list[str]:
    """One comma-separated string or a list of them: trimmed, empties skipped, in order."""
    items = [specs] if isinstance(specs, str) else list(specs)
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise SpecError(f"a model spec must be a string, got {type(item).__name__}: {item!r}")
        out.extend(part.strip() for part in item.split(",") if part.strip())
    return out


Specs = str | Iterable[str | Sequence[str]]
"""Spec strings: one comma-separated string, or a list whose items may be lists (pools)."""


def split_pooled(specs: Specs) -> list[str | list[str]]:
    """Like :func:`split_specs`, with pools kept together: a ``|``-joined part or a nested
    list is a list of member specs."""
    items = [specs] if isinstance(specs, str) else list(specs)
    out: list[str | list[str]] = []
    for item in items:
        if isinstance(item, str):
            for part in split_specs(item):
                members = [m.strip() for m in part.split("|") if m.strip()]
                if len(members) > 1:
                    out.append(members)
                elif members:
                    out.append(members[0])
        elif isinstance(item, Sequence):
            members = [m.strip() for text in split_specs(item) for m in text.split("|")]
            members = [m for m in members if m]
            if not members:
                raise SpecError(f"an empty pool in the specs: {item!r}")
            out.append(members)
        else:
            raise SpecError(f"a model spec must be a string, got {type(item).__name__}: {item!r}")
    return out


Factory = Callable[..., M]
"""``factory(model_name, **kwargs)`` builds a framework model for one provider."""


class ProviderRegistry(Generic[M]):
    """Provider name → factory, for one framework."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._factories: dict[str, Factory[M]] = {}

    def register(self, provider: str, factory: Factory[M]) -> None:
        """Register (or replace) ``factory(model, **kwargs)`` for ``provider``.

        The ``"*"`` factory serves providers with none of their own and is called as
        ``factory(provider, model, **kwargs)``.
        """
        if not callable(factory):
            raise TypeError(f"a provider factory must be callable, got {type(factory).__name__}")
        with self._lock:
            self._factories[provider.strip().lower()] = factory

    def providers(self) -> list[str]:
        with self._lock:
            return sorted(self._factories)

    def build(self, spec: ModelSpec, kwargs: Mapping[str, Any]) -> M:
        with self._lock:
            factory = self._factories.get(spec.provider)
            fallback = self._factories.get("*")
        if factory is None and fallback is None:
            known = ", ".join(self.providers()) or "none registered"
            raise SpecError(f"unknown provider in spec {spec.text!r} (known: {known})")
        try:
            if factory is not None:
                return factory(spec.model, **kwargs)
            assert fallback is not None
            return fallback(spec.provider, spec.model, **kwargs)
        except SpecError:
            raise
        except Exception as exc:
            raise SpecError(f"cannot build model for spec {spec.text!r}: {exc}") from exc

    def build_chain(
        self,
        specs: str | Iterable[str],
        kwargs: Mapping[str, Any] | None = None,
        per_provider: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> list[tuple[ModelSpec, M]]:
        """Build each spec's model, in order. Names a bad spec; refuses an empty list.

        ``kwargs`` go to every model; ``per_provider`` maps a provider to kwargs for its
        models only (an API key, a base URL), taking precedence over ``kwargs``.
        """
        parsed = [parse_spec(text) for text in split_specs(specs)]
        if not parsed:
            raise SpecError("failover chain: no valid specs")
        own = {p.strip().lower(): dict(kw) for p, kw in (per_provider or {}).items()}
        unused = sorted(set(own) - {spec.provider for spec in parsed})
        if unused:
            named = ", ".join(sorted({spec.provider for spec in parsed}))
            raise SpecError(
                f"per_provider names {', '.join(map(repr, unused))}, which no spec uses "
                f"(the specs' providers: {named})"
            )
        shared = dict(kwargs or {})
        return [
            (spec, self.build(spec, {**shared, **own.get(spec.provider, {})})) for spec in parsed
        ]

    def build_models(
        self,
        specs: Specs,
        kwargs: Mapping[str, Any] | None = None,
        per_provider: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> dict[str, M | Pool]:
        """The ``models=`` of a chain built from ``specs``: each spec's model under its key,
        each pool (``a | b`` or a nested list) a :class:`Pool` keyed ``provider/model#n``."""
        groups = split_pooled(specs)
        flat = [text for group in groups for text in ([group] if isinstance(group, str) else group)]
        built = iter(self.build_chain(flat, kwargs, per_provider))
        out: dict[str, M | Pool] = {}
        for group in groups:
            if isinstance(group, str):
                spec, model = next(built)
                out[spec.key] = model
                continue
            members = [next(built) for _ in group]
            keyed = {f"{spec.key}#{n}": model for n, (spec, model) in enumerate(members, 1)}
            out[f"pool:{','.join(keyed)}"] = Pool(keyed)
        return out
