"""llm-failover's framework-neutral core.

The classifier, the health registry, the failover flow and its drivers, events and the
spec parser. Neither LangChain nor LlamaIndex is imported here; the adapters
(``langchain_failover``, ``llamaindex_failover``) are thin layers over this package.
"""

from ._chain import Entry, FailoverChain, Resume, build_entries, check_unique_keys
from ._classify import (
    ClassifierRule,
    ErrorKind,
    add_classifier_rule,
    classify,
    remove_classifier_rule,
    status_of,
)
from ._config import (
    DEFAULT,
    Backoff,
    Deadline,
    DeadlineOption,
    FailoverDefaults,
    FailoverPolicy,
    HedgeOption,
    default_backoff,
    get_failover_defaults,
    set_failover_defaults,
)
from ._errors import (
    AllModelsFailedError,
    AttemptTimeoutError,
    ChainConfigError,
    FailoverError,
    ResumeNotice,
    SpecError,
    StreamInterruptedError,
)
from ._events import FailoverEvent, Observer
from ._failopen import FailOpenStore
from ._flow import Attempt, FailoverFlow, GiveUp, Served, Sleep
from ._health import (
    BenchedModel,
    HealthRecord,
    HealthRegistry,
    HealthStore,
    MemoryHealthStore,
    bench_model,
    get_health_registry,
    is_benched,
    list_benched,
    set_health_registry,
    set_health_store,
    unbench_model,
)
from ._hedge import (
    AdaptiveHedge,
    FleetTally,
    HedgeBudget,
    HedgeNotice,
    get_hedge_budget,
    set_hedge_budget,
)
from ._specs import ModelSpec, ProviderRegistry, parse_spec, split_specs
from ._warnings import SDKRetriesWarning, warn_if_child_retries

__all__ = [
    "AdaptiveHedge",
    "AllModelsFailedError",
    "Attempt",
    "AttemptTimeoutError",
    "Backoff",
    "BenchedModel",
    "ChainConfigError",
    "ClassifierRule",
    "DEFAULT",
    "Deadline",
    "DeadlineOption",
    "Entry",
    "ErrorKind",
    "FailOpenStore",
    "FailoverChain",
    "FailoverDefaults",
    "FailoverError",
    "FailoverEvent",
    "FailoverFlow",
    "FailoverPolicy",
    "FleetTally",
    "GiveUp",
    "HealthRecord",
    "HealthRegistry",
    "HealthStore",
    "HedgeBudget",
    "HedgeNotice",
    "HedgeOption",
    "MemoryHealthStore",
    "ModelSpec",
    "Observer",
    "ProviderRegistry",
    "Resume",
    "ResumeNotice",
    "SDKRetriesWarning",
    "Served",
    "Sleep",
    "SpecError",
    "StreamInterruptedError",
    "add_classifier_rule",
    "bench_model",
    "build_entries",
    "check_unique_keys",
    "classify",
    "default_backoff",
    "get_failover_defaults",
    "get_health_registry",
    "get_hedge_budget",
    "is_benched",
    "list_benched",
    "parse_spec",
    "remove_classifier_rule",
    "set_failover_defaults",
    "set_health_registry",
    "set_health_store",
    "set_hedge_budget",
    "split_specs",
    "status_of",
    "unbench_model",
    "warn_if_child_retries",
]
