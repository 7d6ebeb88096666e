"""Chains from spec strings: the seed's parsing rules and errors."""

from __future__ import annotations

from typing import Any

import pytest

import failover_core as fc


def test_provider_colon_or_slash_and_models_with_slashes() -> None:
    assert fc.parse_spec(" openai:gpt-4o-mini ").key == "openai/gpt-4o-mini"
    assert fc.parse_spec("anthropic/claude-x").key == "anthropic/claude-x"
    spec = fc.parse_spec("openrouter:meta-llama/llama-3.1-8b")
    assert (spec.provider, spec.model) == ("openrouter", "meta-llama/llama-3.1-8b")
    assert fc.parse_spec("OpenAI:gpt-4o").provider == "openai"


@pytest.mark.parametrize("bad", ["gpt-4o", ":gpt-4o", "openai:", "open ai:gpt", "openai:a b"])
def test_a_bad_spec_is_named_in_the_error(bad: str) -> None:
    with pytest.raises(fc.SpecError, match=repr(bad).replace("'", ".")):
        fc.parse_spec(bad)


def test_split_trims_skips_empty_and_splices_comma_chains() -> None:
    assert fc.split_specs(" a:1 , ,b:2") == ["a:1", "b:2"]
    assert fc.split_specs(["a:1", "b:2, c:3", "  "]) == ["a:1", "b:2", "c:3"]


def test_registry_builds_in_order_through_factories() -> None:
    registry: fc.ProviderRegistry[tuple[str, str, dict[str, Any]]] = fc.ProviderRegistry()
    registry.register("openai", lambda model, **kw: ("openai", model, kw))
    registry.register("*", lambda provider, model, **kw: (provider, model, kw))
    built = registry.build_chain("openai:gpt-4o, mistral:large", {"temperature": 0})
    assert [(s.key, m) for s, m in built] == [
        ("openai/gpt-4o", ("openai", "gpt-4o", {"temperature": 0})),
        ("mistral/large", ("mistral", "large", {"temperature": 0})),
    ]


def test_no_valid_spec_is_an_error() -> None:
    registry: fc.ProviderRegistry[str] = fc.ProviderRegistry()
    with pytest.raises(fc.SpecError, match="no valid specs"):
        registry.build_chain([" ", ","])


def test_unknown_provider_and_failing_factory_name_the_spec() -> None:
    registry: fc.ProviderRegistry[str] = fc.ProviderRegistry()
    registry.register("openai", lambda model, **kw: model)
    with pytest.raises(fc.SpecError, match="unknown provider in spec 'cohere:command'"):
        registry.build_chain(["openai:gpt-4o", "cohere:command"])

    def broken(model: str, **kw: Any) -> str:
        raise RuntimeError("missing package")

    registry.register("bad", broken)
    with pytest.raises(fc.SpecError, match=r"'bad:model'.*missing package"):
        registry.build_chain("bad:model")


def test_non_string_spec_is_refused() -> None:
    with pytest.raises(fc.SpecError, match="must be a string"):
        fc.split_specs(["a:1", 3])  # type: ignore[list-item]


def test_per_provider_kwargs_reach_only_that_providers_models() -> None:
    registry: fc.ProviderRegistry[tuple[str, dict[str, Any]]] = fc.ProviderRegistry()
    registry.register("*", lambda provider, model, **kw: (provider, kw))
    built = registry.build_chain(
        "openai:gpt-4o, anthropic:claude, openai:gpt-4o-mini",
        {"temperature": 0, "api_key": "shared"},
        per_provider={"OpenAI": {"api_key": "sk-openai"}, "anthropic": {"api_key": "sk-ant"}},
    )
    assert [m for _, m in built] == [
        ("openai", {"temperature": 0, "api_key": "sk-openai"}),
        ("anthropic", {"temperature": 0, "api_key": "sk-ant"}),
        ("openai", {"temperature": 0, "api_key": "sk-openai"}),
    ]


def test_per_provider_kwargs_for_a_provider_no_spec_uses_are_refused() -> None:
    registry: fc.ProviderRegistry[str] = fc.ProviderRegistry()
    registry.register("*", lambda provider, model, **kw: model)
    with pytest.raises(fc.SpecError, match=r"'antropic', which no spec uses.*anthropic, openai"):
        registry.build_chain("openai:a, anthropic:b", per_provider={"antropic": {"api_key": "k"}})
