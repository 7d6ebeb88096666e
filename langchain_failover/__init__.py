"""LangChain adapter: :class:`FailoverChatModel`, a ``BaseChatModel`` over a chain of them.

Needs the ``langchain`` extra. The failover logic lives in :mod:`failover_core`; this
package translates LangChain calls into it and its decisions into LangChain callbacks.
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
    from ._callbacks import EVENT_NAME
    from .chat_models import FailoverChatModel, key_of, register_provider
except ModuleNotFoundError as exc:  # the framework itself is not installed
    clearer = _missing_extra(
        exc, "langchain", ("langchain_core", "langchain"), "langchain_failover"
    )
    if clearer is None:
        raise
    raise clearer from exc

__all__ = [
    "AllModelsFailedError",
    "EVENT_NAME",
    "ErrorKind",
    "FailoverChatModel",
    "FailoverEvent",
    "SDKRetriesWarning",
    "StreamInterruptedError",
    "bench_model",
    "is_benched",
    "key_of",
    "list_benched",
    "register_provider",
    "set_failover_defaults",
    "unbench_model",
]
