"""What merging would do, for a working tree or a pull request, as data rendered as text, JSON or Markdown.

`build_plan` computes a `Plan` of a working tree (`build`), `render_text` and `render_markdown`
print it (`render`), `Plan.as_json()` is its data. `workspace` reads the working tree and its
base, `rules` the rules that judge the plan and the rule files it changes. `pullrequest` judges
an open pull request by the rules of its base; `render` writes its one plan comment.
"""

from __future__ import annotations

from reconciler.plan.build import build_plan
from reconciler.plan.model import ChangePlan, Plan, PolicyNeed, Problem, RuleChange, RuleNotInForce

__all__ = ["ChangePlan", "Plan", "PolicyNeed", "Problem", "RuleChange", "RuleNotInForce", "build_plan"]
