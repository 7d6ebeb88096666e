"""LlamaIndex adapter: :class:`FailoverLLM`, a function-calling LLM over a chain of LLMs.

Needs the ``llamaindex`` extra. The failover logic lives in :mod:`failover_core`; this
package translates LlamaIndex calls into it and its decisions into instrumentation events.
"""

from failover_core import (
    AllModelsFailedError,
    ErrorKind,
    FailoverEvent,
    SDKRetriesWarning,
    StreamInterruptedError,
    bench_model,
    is_benched,
    list_benched,
    set_failover_defaults,
    unbench_model,
)
from failover_core._extras import missing_extra as _missing_extra

try:
    from .llms import FailoverDecisionEvent, FailoverLLM, ToolsUnsupportedError, key_of
except ModuleNotFoundError as exc:  # the framework itself is not installed
    clearer = _missing_extra(exc, "llamaindex", ("llama_index",), what="llamaindex_failover")
    if clearer is None:
        raise
    raise clearer from exc

__all__ = [
    "AllModelsFailedError",
    "ErrorKind",
    "FailoverDecisionEvent",
    "FailoverEvent",
    "FailoverLLM",
    "SDKRetriesWarning",
    "StreamInterruptedError",
    "ToolsUnsupportedError",
    "bench_model",
    "is_benched",
    "key_of",
    "list_benched",
    "set_failover_defaults",
    "unbench_model",
]
