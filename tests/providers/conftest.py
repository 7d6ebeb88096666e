"""The loopback error server, and the switches that keep SDKs from retrying or phoning out."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.providers._server import ErrorServer

# LiteLLM fetches a price list from the internet at import unless told to use its own copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture(scope="session")
def error_server() -> Iterator[ErrorServer]:
    server = ErrorServer()
    yield server
    server.close()


@pytest.fixture(autouse=True, scope="session")
def _no_cohere_backoff() -> Iterator[None]:
    """Cohere's client retries 429/5xx with a backoff of seconds that its LangChain and
    LlamaIndex wrappers cannot turn off; the retries still hit the server, only faster."""
    try:
        from cohere.core import http_client
    except ImportError:
        yield
        return
    original = http_client._retry_timeout
    http_client._retry_timeout = lambda response, retries: 0.0
    yield
    http_client._retry_timeout = original
