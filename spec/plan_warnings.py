"""Plans that are valid but would answer the wrong question: `validate` and `launch` warn.

Why: OFAT moves each parameter from one baseline, so a parameter whose effect depends on
another ranks low. A plan whose last searching stage takes only the top k of that ranking
(the users' own "grid on the top 3, Bayes on the top 3") pins everything else at its
best-so-far value for the rest of the sweep; on NMTLC corpora such plans missed the grid's
best in every seed where plain TPE found it (docs/benchmarks.md). The plan stays
expressible, because it is the users' method, but never silently.

Only plans with an OFAT stage before their last searching stage warn: there the pinning
follows a ranking that interactions can fool. A one-stage grid over the learning rate is a
deliberate one-parameter sweep, and saying otherwise on every such launch would train
users to ignore the warning.
"""

from __future__ import annotations

from typing import Any

from sweepctl.spec.stages import StageSpecBase, TopParameters

RELEASE_HINT = "add a last stage with `parameters: all` (docs/spec.md, 'Staged plans')"


def plan_warnings(stages: list[StageSpecBase], search_space: dict[str, Any]) -> list[str]:
    """One line per problem; empty for a plan whose last searching stage searches all."""
    searching = [s for s in stages if s.explores]
    if not searching:
        return []
    last = searching[-1]
    if not any(s.ranks_parameters for s in stages[: stages.index(last)]):
        return []
    pinned = _pinned_by(last, list(search_space))
    if not pinned:
        return []
    return [
        f"stages: '{last.name}' is the last stage that searches, and it leaves {pinned} "
        "at their best values so far for the rest of the sweep (an effect OFAT missed "
        f"because it depends on another parameter is never found); {RELEASE_HINT}"
    ]


def _pinned_by(stage: StageSpecBase, names: list[str]) -> str:
    """What the stage leaves unsearched, in words; empty when it searches everything."""
    if stage.parameters == "all":
        return ""
    if isinstance(stage.parameters, TopParameters):
        screened = len(names)
        if stage.parameters.top >= screened:
            return ""
        rest = screened - stage.parameters.top
        return f"the {rest} parameter(s) outside the top {stage.parameters.top}"
    left = [name for name in names if name not in stage.parameters]
    return ", ".join(left)
