"""The `stages:` of a spec: a tagged union on `strategy`, one model per strategy.

Each strategy's keys and rules live on its own model, the way search-space parameters do
(FloatParam, IntParam, ...), so `repeats` exists only where it means something and a
typo is an "unknown key" rather than a silently ignored one. The union is a registry,
not a fixed `Union[...]`: a plugin strategy (sweepctl.orchestrator.strategies.register)
adds its model here, and specs naming it validate like the built-in ones.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import ConfigDict, Field, PlainValidator, SerializeAsAny, model_validator

from sweepctl.spec.base import FieldError, Scalar, StrictModel, suggest


class TopParameters(StrictModel):
    """`{top: 3, from: screen}`: the k most impactful parameters of a ranking stage."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    top: int = Field(ge=1)
    from_stage: str = Field(alias="from")


class StageSpecBase(StrictModel):
    """The keys every stage has. `ranks_parameters`: its summary ranks the parameters, so
    a later stage may take `parameters: {top: k, from: <this stage>}`. `needs_history`:
    it works on the results of earlier stages, so it cannot be the first one."""

    ranks_parameters: ClassVar[bool] = False
    needs_history: ClassVar[bool] = False
    explores: ClassVar[bool] = True  # it searches the space (spec.plan_warnings); confirm does not

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
    strategy: str
    parameters: Literal["all"] | list[str] | TopParameters = "all"
    seed: int | None = None

    def check_against(self, where: str, names: list[str], space: dict[str, Any]) -> None:
        """Rules that need the search space; `names` are the parameters this stage searches."""


class OfatStage(StageSpecBase):
    """One factor at a time: the baseline, then each parameter at each of its ofat values,
    every configuration `repeats` times with consecutive seeds."""

    ranks_parameters: ClassVar[bool] = True

    strategy: Literal["ofat"]
    repeats: int = Field(default=1, ge=1, le=20)

    def check_against(self, where: str, names: list[str], space: dict[str, Any]) -> None:
        missing = [n for n in names if not space[n].ofat]
        if missing:
            raise FieldError(where, f"OFAT needs ofat values for {', '.join(missing)}")


class GridStage(StageSpecBase):
    """Every combination once; `values` overrides a parameter's default axis."""

    strategy: Literal["grid"]
    values: dict[str, list[Scalar]] | None = None

    def check_against(self, where: str, names: list[str], space: dict[str, Any]) -> None:
        for name, options in (self.values or {}).items():
            if name not in space:
                raise FieldError(where, f"values.{name}: not in search_space")
            param = space[name]
            if param.type == "categorical":
                bad = [v for v in options if v not in param.choices]
            else:
                bad = [v for v in options if not param.low <= v <= param.high]
            if bad or not options:
                raise FieldError(where, f"values.{name}: {bad or 'empty'} outside the search space")


class SampledStage(StageSpecBase):
    """A stage whose points an Optuna sampler picks; `n_trials` counts trainings."""

    n_trials: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _needs_budget(self) -> SampledStage:
        if self.n_trials is None:
            raise FieldError("n_trials", f"strategy '{self.strategy}' needs n_trials")
        return self

    @property
    def budget(self) -> int:
        return self.n_trials or 0


class RandomStage(SampledStage):
    strategy: Literal["random"]


class BayesStage(SampledStage):
    """`warm_start`: the sampler learns from every earlier trial of the sweep, not only
    this stage's (sweepctl.orchestrator.scoped_sampler)."""

    strategy: Literal["bayes"]
    sampler: Literal["tpe", "gp"] = "tpe"
    warm_start: bool = False


class ConfirmStage(StageSpecBase):
    """Rerun the `top` best distinct configurations so far with `seeds` seeds each (and
    the baseline with the same seeds), then `pick` by the seed mean or by the pessimistic
    end of its 95% interval. Why: a sweep's single best trial is partly its seed's luck."""

    needs_history: ClassVar[bool] = True
    explores: ClassVar[bool] = False

    strategy: Literal["confirm"]
    top: int = Field(default=3, ge=1, le=100)
    seeds: int = Field(default=5, ge=2, le=100)
    pick: Literal["mean", "lower_bound"] = "mean"
    baseline: bool = True


STAGE_SPECS: dict[str, type[StageSpecBase]] = {}


def register_stage_spec(model: type[StageSpecBase]) -> type[StageSpecBase]:
    """Add a strategy's model to the union; its tag is its `strategy: Literal[...]`."""
    (tag,) = get_args(model.model_fields["strategy"].annotation)
    known = STAGE_SPECS.get(tag)
    if known is not None and known is not model:
        raise ValueError(f"strategy {tag!r} is already registered by {known.__name__}")
    STAGE_SPECS[tag] = model
    return model


for _model in (OfatStage, GridStage, RandomStage, BayesStage, ConfirmStage):
    register_stage_spec(_model)


class _StrategyTag(StrictModel):
    """Only for its error: a missing or unknown `strategy` is reported on that key."""

    model_config = ConfigDict(extra="ignore")
    strategy: str

    @model_validator(mode="after")
    def _known(self) -> _StrategyTag:
        if self.strategy not in STAGE_SPECS:
            names = ", ".join(repr(n) for n in STAGE_SPECS)
            hint = suggest(self.strategy, set(STAGE_SPECS))
            raise FieldError("strategy", f"expected one of {names} (got {self.strategy!r}){hint}")
        return self


def _stage_of(value: Any) -> StageSpecBase:
    if isinstance(value, StageSpecBase):
        return value
    tag = _StrategyTag.model_validate(value)
    return STAGE_SPECS[tag.strategy].model_validate(value)


StageSpec = Annotated[SerializeAsAny[StageSpecBase], PlainValidator(_stage_of)]
