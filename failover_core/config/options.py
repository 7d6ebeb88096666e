"""One message for a constructor option nobody knows, shared by the adapters.

A misspelt option (``cooldwn=5``) silently ignored is a failover model that never cools
down; so the adapters refuse it and say which option was meant.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["check_options", "unexpected_option"]


def unexpected_option(owner: str, name: str, known: Iterable[str]) -> TypeError:
    """``<owner> got an unexpected option 'x'; did you mean 'y'?`` (the hint when one is close)."""
    message = f"{owner} got an unexpected option {name!r}"
    close = difflib.get_close_matches(name, sorted(set(known)), n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    return TypeError(message)


def check_options(owner: str, given: Iterable[str], known: Iterable[str]) -> None:
    """Raise :func:`unexpected_option` for the first name in ``given`` not in ``known``."""
    allowed = set(known)
    for name in given:
        if name not in allowed:
            raise unexpected_option(owner, name, allowed)
