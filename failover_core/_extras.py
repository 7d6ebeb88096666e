"""Say which extra to install when an optional dependency is missing.

A bare ``No module named 'langchain_core'`` tells a newcomer what broke, not what to do.
"""

from __future__ import annotations

__all__ = ["missing_extra"]


def missing_extra(
    exc: ModuleNotFoundError, extra: str, needs: tuple[str, ...], what: str
) -> ModuleNotFoundError | None:
    """A clearer error for ``exc`` when the missing module belongs to ``extra``.

    ``needs`` are the top-level packages the extra installs; a missing module that is not
    one of them is another problem, and ``None`` says to re-raise ``exc`` as it is.
    """
    missing = (exc.name or "").split(".")[0]
    if missing not in needs:
        return None
    return ModuleNotFoundError(
        f"{what} needs the [{extra}] extra ({missing!r} is not installed): "
        f'pip install "llm-failover[{extra}]"',
        name=exc.name,
    )
