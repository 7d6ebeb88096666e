"""LangChain adapter (coming in its own issue)."""

__all__: list[str] = []
