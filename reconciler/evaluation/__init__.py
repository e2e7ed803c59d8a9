"""Server-side flag evaluation: PostHog's algorithm over the flags the store holds.

Pure computation on the flag model, no I/O. The same answers as the PostHog SDKs' local
evaluation wherever they can decide; where they would ask the server (a property not sent,
experience continuity, an operator only the server evaluates), PostHog's server rules. The
API's remote-evaluation endpoints (PostHog `/flags`, `/decide`, OFREP) all map from
`FlagResult`.
"""

from reconciler.evaluation.conditions import bucket
from reconciler.evaluation.evaluator import Evaluator, context_key
from reconciler.evaluation.result import (
    COHORT_NOT_FOUND,
    CONDITION_MATCH,
    FLAG_DISABLED,
    NO_CONDITION_MATCH,
    NO_GROUP_TYPE,
    OUT_OF_ROLLOUT_BOUND,
    Context,
    FlagResult,
)

__all__ = [
    "COHORT_NOT_FOUND",
    "CONDITION_MATCH",
    "FLAG_DISABLED",
    "NO_CONDITION_MATCH",
    "NO_GROUP_TYPE",
    "OUT_OF_ROLLOUT_BOUND",
    "Context",
    "Evaluator",
    "FlagResult",
    "bucket",
    "context_key",
]
