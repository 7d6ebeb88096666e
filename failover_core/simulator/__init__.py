"""A fault-injecting LLM provider on loopback, for tests, demos and outage rehearsals.

It speaks the OpenAI chat-completions API (JSON and SSE streaming, tool calls, JSON-schema
response format) and the Anthropic messages API (JSON and streaming, tool use), so real
SDK clients talk to it and every error they raise is built from a real HTTP response.
Needs the ``sim`` extra (starlette, uvicorn).
"""

from ._faults import Fault, RecordedRequest, SimulatorState
from ._payloads import sample_from_schema
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
