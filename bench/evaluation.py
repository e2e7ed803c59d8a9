"""Benchmark: evaluating every flag of an environment for one caller, against PostHog's SDK.

200 sampled flags (every operator, variants, payloads, rollouts; `tests/support/flagsample.py`),
or with `--rollouts` 200 flags that are only a rollout percentage (the common case), and 2,000
sampled callers with their properties. In one run, alternating rounds time:

1. the baseline: PostHog's Python SDK (the `posthog` package) evaluating the same flag
   definitions locally for each caller (`get_all_flags_and_payloads(...,
   only_evaluate_locally=True)`), the evaluation every server SDK does on each call;
2. ours: `Evaluator.evaluate_all` for each caller, what `POST /flags` computes per request.

Usage: python -m bench.evaluation [--rollouts] [--flags N] [--callers N] [--rounds N]
Target (bench/README.md): no slower than the SDK's local evaluation of the same flags.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from reconciler.evaluation import Context, Evaluator
from reconciler.model.flags import Flag, FlagFilters, FlagGroup
from tests.support.flagsample import local_sdk, sample_contexts, sample_flags


def timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def rollouts(count: int) -> list[Flag]:
    return [
        Flag(
            id=i,
            key=f"rollout-{i}",
            active=True,
            filters=FlagFilters(groups=[FlagGroup(rollout_percentage=float(i % 101))]),
        )
        for i in range(1, count + 1)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", type=int, default=200)
    parser.add_argument("--callers", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rollouts", action="store_true", help="flags that are only a rollout percentage")
    args = parser.parse_args()
    flags = rollouts(args.flags) if args.rollouts else sample_flags(args.flags, seed=90, cohorts=False)
    callers = sample_contexts(args.callers, seed=91)
    evaluator = Evaluator(flags, {"0": "company"})
    sdk = local_sdk(flags)

    def ours() -> None:
        for caller in callers:
            evaluator.evaluate_all(caller)

    def posthog(caller: Context) -> None:
        sdk.get_all_flags_and_payloads(
            caller.distinct_id,
            person_properties=caller.person_properties,
            groups=caller.groups,
            group_properties=caller.group_properties,
            only_evaluate_locally=True,
        )

    def baseline() -> None:
        for caller in callers:
            posthog(caller)

    rounds: list[tuple[float, float]] = []
    try:
        for _ in range(args.rounds):
            rounds.append((timed(baseline), timed(ours)))
    finally:
        sdk.shutdown()
    base = statistics.median(b for b, _ in rounds)
    mine = statistics.median(o for _, o in rounds)
    per = 1e6 / args.callers
    print(f"{args.flags} flags x {args.callers} callers, median of {args.rounds} alternating rounds")
    print(f"posthog SDK local evaluation: {base * per:8.1f} us per caller")
    print(f"reconciler Evaluator:         {mine * per:8.1f} us per caller")
    print(f"ours / SDK: {mine / base:.2f}x")


if __name__ == "__main__":
    main()
