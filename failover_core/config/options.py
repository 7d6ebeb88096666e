"""Messages for what a constructor is given wrong, shared by the adapters.

A misspelt option (``cooldwn=5``) silently ignored is a failover model that never cools
down; so the adapters refuse it and say which option was meant. A chain member of the
wrong type (a model name, an embeddings model, a model class) is refused in one sentence
naming what was given and what is expected, not in a validator's account of its internals.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["check_options", "not_a_model", "unexpected_option"]

_MEANT = {"llms": "models", "models": "llms"}
"""Options one adapter takes under the other adapter's name (too far apart for difflib)."""


def unexpected_option(owner: str, name: str, known: Iterable[str]) -> TypeError:
    """``<owner> got an unexpected option 'x'; did you mean 'y'?`` (the hint when one is close)."""
    allowed = sorted(set(known))
    message = f"{owner} got an unexpected option {name!r}"
    meant = _MEANT.get(name)
    close = [meant] if meant in allowed else difflib.get_close_matches(name, allowed, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return TypeError(message)


def check_options(owner: str, given: Iterable[str], known: Iterable[str]) -> None:
    """Raise :func:`unexpected_option` for the first name in ``given`` not in ``known``."""
    allowed = set(known)
    for name in given:
        if name not in allowed:
            raise unexpected_option(owner, name, allowed)


def _describe(given: object) -> str:
    if isinstance(given, str):
        return f"the string {given!r}"
    if isinstance(given, type):
        return f"the class {given.__name__} itself, not a model built from it"
    kind = type(given)
    article = "an" if kind.__name__[:1] in "AEIOU" else "a"
    return f"{article} {kind.__name__} (from {kind.__module__.split('.')[0]})"


def not_a_model(what: str, where: str, given: object, specs: str | None = None) -> TypeError:
    """The one-sentence refusal of a chain member that is not a model of the right type.

    ``what`` is the type expected ("LangChain chat models (BaseChatModel)"), ``where`` the
    member's place ("models[0]"), ``specs`` the way to build a chain from strings, if any.
    """
    message = f"expected {what}; {where} is {_describe(given)}"
    if isinstance(given, type):
        message += f": build one, e.g. {given.__name__}(model=...)"
    elif isinstance(given, str):
        if specs:
            message += f": for model names use {specs}('openai:gpt-4o-mini, ...')"
        else:
            message += ": build the model, e.g. llama_index.llms.openai.OpenAI(model=...)"
    return TypeError(message)
