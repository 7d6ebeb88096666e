"""Which children are reasoning models, read from their own configuration.

A reasoning model (OpenAI's o-series and GPT-5, Claude with extended thinking, Gemini with
thinking, DeepSeek's reasoner) may think for minutes before its first token: the default
deadlines that cut a silent chat model after a minute must never cut it. This module
decides the kind from the child object alone, by duck typing (LangChain's ``ChatOpenAI``,
``ChatAnthropic``, ``ChatGoogleGenerativeAI`` and LlamaIndex's ``OpenAI``, ``Anthropic``,
``GoogleGenAI`` keep these settings under the names read here), so the core imports no SDK.
See docs/guides/deadlines.md.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["is_reasoning_model"]

_NAME_FIELDS = ("model_name", "model", "model_id", "deployment_name")
_OPENAI_REASONING = re.compile(r"(^|/)(o\d+(-|$)|gpt-5)")
_REASONER_NAMES = re.compile(r"(reasoner|(^|[/-])r1($|-)|qwq|thinking)")
_THINKING_GEMINI = re.compile(r"gemini-(2\.5|3)")
_OFF = ("none", "disabled", "off")


def _name(model: object) -> str:
    for field in _NAME_FIELDS:
        value = getattr(model, field, None)
        if isinstance(value, str) and value:
            return value.lower()
    return ""


def _effort(model: object) -> str | None:
    """The model's reasoning effort as configured, if any (``reasoning_effort``, or
    ``reasoning={"effort": ...}``)."""
    effort = getattr(model, "reasoning_effort", None)
    if isinstance(effort, str):
        return effort.lower()
    reasoning = getattr(model, "reasoning", None)
    if isinstance(reasoning, Mapping) and isinstance(reasoning.get("effort"), str):
        return str(reasoning["effort"]).lower()
    return None


def _thinking(model: object) -> bool | None:
    """Anthropic's extended thinking (``thinking``/``thinking_dict``): on, off, or unset."""
    for field in ("thinking", "thinking_dict"):
        value = getattr(model, field, None)
        if isinstance(value, Mapping) and value.get("type"):
            return str(value["type"]).lower() not in _OFF
    return None


def _thinking_budget(model: object) -> int | None:
    """Gemini's thinking budget (``thinking_budget``, or in ``thinking_config``)."""
    budget = getattr(model, "thinking_budget", None)
    if isinstance(budget, int) and not isinstance(budget, bool):
        return budget
    config = getattr(model, "thinking_config", None)
    value = (
        config.get("thinking_budget")
        if isinstance(config, Mapping)
        else getattr(config, "thinking_budget", None)
    )
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def is_reasoning_model(model: object) -> bool:
    """Whether ``model`` (a chat model or LLM object) is configured to reason first.

    o-series and GPT-5 models reason unless their effort is ``"none"`` (``-chat``
    variants never do); any model with a reasoning effort set (other than none) does;
    Claude with ``thinking`` enabled; Gemini with a non-zero thinking budget, or a 2.5/3
    model without a budget of 0 (they think by default); DeepSeek's reasoner, R1, QwQ.
    """
    name = _name(model)
    effort = _effort(model)
    if effort in _OFF:
        return False
    if effort is not None:
        return True
    thinking = _thinking(model)
    if thinking is not None:
        return thinking
    budget = _thinking_budget(model)
    if budget is not None:
        return budget != 0
    if getattr(model, "include_thoughts", None) is True:
        return True
    if "-chat" in name:
        return False
    return bool(
        _OPENAI_REASONING.search(name)
        or _REASONER_NAMES.search(name)
        or _THINKING_GEMINI.search(name)
    )
