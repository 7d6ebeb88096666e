"""llm-failover's framework-neutral core.

The classifier, the health registry, the failover flow and its drivers, events and the
spec parser. Neither LangChain nor LlamaIndex is imported here; the adapters
(``langchain_failover``, ``llamaindex_failover``) are thin layers over this package.
"""

from ._errors import (
    AllModelsFailedError,
    AttemptTimeoutError,
    ChainConfigError,
    FailoverError,
    ResumeNotice,
    SpecError,
    StreamInterruptedError,
)
from .classification.classifier import (
    ClassifierRule,
    ErrorKind,
    add_classifier_rule,
    classify,
    remove_classifier_rule,
    status_of,
)
from .classification.content_filter import ContentFilteredAnswer, is_content_filter, refusal_of
from .config.model_kinds import is_reasoning_model
from .config.policy import (
    DEFAULT,
    Backoff,
    Deadline,
    DeadlineOption,
    FailoverDefaults,
    FailoverPolicy,
    HedgeOption,
    OnContentFilter,
    OnTransient,
    default_backoff,
    get_failover_defaults,
    set_failover_defaults,
)
from .config.sdk_retries import SDKRetriesWarning, warn_if_child_retries
from .config.specs import ModelSpec, ProviderRegistry, parse_spec, split_specs
from .drivers.chain import (
    Entry,
    FailoverChain,
    Resume,
    build_entries,
    check_models,
    check_unique_keys,
)
from .flow.engine import Attempt, FailoverFlow, GiveUp, Served, Sleep
from .flow.hedging import (
    AdaptiveHedge,
    FleetTally,
    HedgeBudget,
    HedgeNotice,
    get_hedge_budget,
    reset_hedging,
    set_hedge_budget,
)
from .health.default import (
    bench_model,
    get_health_registry,
    is_benched,
    list_benched,
    set_health_registry,
    set_health_store,
    unbench_model,
)
from .health.failopen import FailOpenStore
from .health.memory import MemoryHealthStore
from .health.records import BenchedModel, HealthRecord, HealthStore
from .health.registry import HealthRegistry
from .pool.balancer import PoolBalancer, get_pool_balancer, set_pool_balancer
from .pool.pool import Pool
from .telemetry.events import FailoverEvent, Observer

__all__ = [
    "AdaptiveHedge",
    "AllModelsFailedError",
    "Attempt",
    "AttemptTimeoutError",
    "Backoff",
    "BenchedModel",
    "ChainConfigError",
    "ClassifierRule",
    "ContentFilteredAnswer",
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
    "OnContentFilter",
    "OnTransient",
    "Pool",
    "PoolBalancer",
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
    "check_models",
    "check_unique_keys",
    "classify",
    "default_backoff",
    "get_failover_defaults",
    "get_health_registry",
    "get_hedge_budget",
    "get_pool_balancer",
    "is_benched",
    "is_content_filter",
    "is_reasoning_model",
    "list_benched",
    "parse_spec",
    "refusal_of",
    "remove_classifier_rule",
    "reset_hedging",
    "set_failover_defaults",
    "set_health_registry",
    "set_health_store",
    "set_hedge_budget",
    "set_pool_balancer",
    "split_specs",
    "status_of",
    "unbench_model",
    "warn_if_child_retries",
]
