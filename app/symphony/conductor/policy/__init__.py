"""Recovery policies: what the conductor does when a node fails.

Importing this package imports neither torch nor numpy; :func:`load_policy` loads the trained
network (see ``docs/policy.md``).
"""

from __future__ import annotations

from symphony.conductor import TRACE_PREFIX
from symphony.conductor.policy.context import (
    ERROR_KINDS,
    FEATURE_NAMES,
    STRATEGIES,
    Decision,
    ErrorKind,
    FailureContext,
    Policy,
    Strategy,
    legal_strategies,
)
from symphony.conductor.policy.heuristics import HEURISTICS
from symphony.conductor.policy.learned import (
    LearnedPolicy,
    PolicyLoadError,
    TorchPolicy,
    default_weights_path,
    load_policy,
)
from symphony.conductor.policy.traces import (
    Trace,
    TraceError,
    decode_traces,
    encode_traces,
    read_traces,
)

__all__ = [
    "ERROR_KINDS",
    "FEATURE_NAMES",
    "HEURISTICS",
    "STRATEGIES",
    "TRACE_PREFIX",
    "Decision",
    "ErrorKind",
    "FailureContext",
    "LearnedPolicy",
    "Policy",
    "PolicyLoadError",
    "Strategy",
    "TorchPolicy",
    "Trace",
    "TraceError",
    "decode_traces",
    "default_weights_path",
    "encode_traces",
    "legal_strategies",
    "load_policy",
    "read_traces",
]
