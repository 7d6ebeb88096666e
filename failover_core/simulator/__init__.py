"""A fault-injecting LLM provider on loopback, for tests, demos and outage rehearsals.

It speaks the OpenAI chat-completions API (JSON and SSE streaming, tool calls, JSON-schema
response format) and the Anthropic messages API (JSON and streaming, tool use), so real
SDK clients talk to it and every error they raise is built from a real HTTP response.
Needs the ``sim`` extra (starlette, uvicorn, httpx): the server and the remote control are
imported on first use, so a missing extra is reported by name, not as ``No module named``.
"""

from __future__ import annotations

import importlib
import typing

from .._extras import missing_extra as _missing_extra
from ._faults import Fault, RecordedRequest, SimulatorState
from ._payloads import sample_from_schema

if typing.TYPE_CHECKING:
    from ._remote import RemoteSimulator
    from ._server import ProviderSimulator

__all__ = [
    "Fault",
    "ProviderSimulator",
    "RecordedRequest",
    "RemoteSimulator",
    "SimulatorState",
    "sample_from_schema",
]

_SIM_PACKAGES = ("uvicorn", "starlette", "httpx", "anyio", "h11")
_LAZY = {"ProviderSimulator": "._server", "RemoteSimulator": "._remote"}


def __getattr__(name: str) -> typing.Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        module = importlib.import_module(_LAZY[name], __name__)
    except ModuleNotFoundError as exc:
        clearer = _missing_extra(exc, "sim", _SIM_PACKAGES, what="the provider simulator")
        if clearer is None:
            raise
        raise clearer from exc
    return getattr(module, name)
