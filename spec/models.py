"""The sweep spec: YAML in, typed and validated objects out.

Validation happens here, at the edge, so the worker and the store only ever see a spec
that can run. Unknown keys are errors everywhere (a misspelt `learnin_rate` must not
silently fall back to a default), with one exception: extra keys under `dataset:` are
builder arguments for `datasets.load_dataset`, checked against the builder's own config
class when the builder is one of the packaged file builders (csv, json, ...).

Every key is documented in docs/spec.md.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from sweepctl.spec import yaml_loader as spec_yaml
from sweepctl.spec.base import FieldError, Scalar, StrictModel, suggest
from sweepctl.spec.errors import SpecError
from sweepctl.spec.overnight import BudgetSpec, NotifySpec, redact_url
from sweepctl.spec.plan import PruningSpec, ResourcesSpec, RetriesSpec, check_plan
from sweepctl.spec.stages import StageSpec, StageSpecBase
from sweepctl.spec.training_fields import training_argument_names
from sweepctl.spec.training_rules import (
    EXTRA_TRAINING_KEYS,
    check_hyperparameter,
    check_training_values,
)
from sweepctl.spec.yaml_loader import SpecLoader  # noqa: F401  (re-exported for readers)

# Settings sweepctl derives itself; letting users set them would break best-checkpoint
# selection or the one-checkpoint-per-trial disk budget.
OWNED_TRAINING_KEYS = {
    "output_dir": "checkpoints go to $SWEEPCTL_HOME/runs/<sweep>/trial-<id>",
    "load_best_model_at_end": "sweepctl always keeps the best checkpoint",
    "metric_for_best_model": "it follows objective.metric",
    "greater_is_better": "it follows objective.direction",
    "save_strategy": "it follows eval_strategy",
    "save_steps": "it follows eval_steps",
    "save_total_limit": "sweepctl keeps only the best checkpoint",
    "report_to": "W&B is configured under tracking.wandb",
    "do_train": "sweepctl decides what runs",
    "do_eval": "sweepctl decides what runs",
    "do_predict": "the test split is evaluated once when dataset.splits has one",
    "push_to_hub": "export the best checkpoint instead",
}
DATASET_HYPERPARAMETERS = {"max_length"}
FILE_BUILDERS = {"csv", "json", "parquet", "text", "arrow"}
BINARY_METRICS = ("loss", "accuracy", "f1", "precision", "recall")
AVERAGED_METRICS = tuple(
    f"{m}_{avg}" for m in ("f1", "precision", "recall") for avg in ("macro", "weighted")
)
OBJECTIVE_METRICS = BINARY_METRICS + AVERAGED_METRICS
# Validation context for a trial spec the orchestrator resolved from a checked sweep spec:
# HF already judged its training keys at launch, and the worker's Trainer will again.
RESOLVED = "resolved"
SWEEP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class SplitNames(StrictModel):
    """Which split of the loaded dataset plays which role; null means "none"."""

    train: str = "train"
    validation: str | None = "validation"
    test: str | None = "test"


class DatasetSpec(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    path: str = "csv"
    name: str | None = None
    data_files: dict[str, str | list[str]] | None = None
    class_files: dict[str, str | list[str]] | None = None
    splits: SplitNames = SplitNames()
    text_fields: list[str] = Field(min_length=1, max_length=2)
    label_field: str = "label"
    label_map: dict[Scalar, Scalar] | None = None
    train_size: int | None = Field(default=None, gt=0)
    eval_size: int | None = Field(default=None, gt=0)
    test_size: int | None = Field(default=None, gt=0)
    validation_split: float = Field(default=0.1, gt=0.0, lt=1.0)
    test_split: float | None = Field(default=None, gt=0.0, lt=1.0)
    max_length: int = Field(default=128, ge=8, le=16384)
    seed: int | None = None

    @property
    def builder_kwargs(self) -> dict[str, Any]:
        """Extra keys are passed to `datasets.load_dataset` untouched."""
        return dict(self.model_extra or {})

    @model_validator(mode="after")
    def _check_sources(self) -> DatasetSpec:
        if self.data_files and self.class_files:
            raise ValueError("give either data_files or class_files, not both")
        if self.class_files is not None and len(self.class_files) < 2:
            raise ValueError("class_files needs one entry per class (at least two)")
        if self.path in FILE_BUILDERS and not (self.data_files or self.class_files):
            raise ValueError(f"path '{self.path}' needs data_files or class_files")
        if self.path in FILE_BUILDERS and self.builder_kwargs:  # none: nothing to import
            _check_builder_kwargs(self.path, self.builder_kwargs)
        return self


def _check_builder_kwargs(builder: str, kwargs: dict[str, Any]) -> None:
    from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES

    module = _PACKAGED_DATASETS_MODULES[builder][0]
    config_cls = next(
        v
        for k, v in vars(__import__(module, fromlist=["x"])).items()
        if k.endswith("Config") and dataclasses.is_dataclass(v) and k.lower() != "builderconfig"
    )
    known = {f.name for f in dataclasses.fields(config_cls)} - {"name", "data_files", "data_dir"}
    for key in kwargs:
        if key not in known:
            raise FieldError(
                key,
                f"unknown key: not a sweepctl dataset key nor an argument of the {builder} "
                f"builder{suggest(key, known | set(DatasetSpec.model_fields))}",
            )


class FloatParam(StrictModel):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    step: float | None = Field(default=None, gt=0)
    ofat: list[float] = []

    @model_validator(mode="after")
    def _check(self) -> FloatParam:
        _check_range(self.low, self.high, self.log, self.ofat)
        if self.log and self.step is not None:
            raise ValueError("log and step cannot be combined")
        return self


class IntParam(StrictModel):
    type: Literal["int"]
    low: int
    high: int
    log: bool = False
    step: int = Field(default=1, gt=0)
    ofat: list[int] = []

    @model_validator(mode="after")
    def _check(self) -> IntParam:
        _check_range(self.low, self.high, self.log, self.ofat)
        return self


class CategoricalParam(StrictModel):
    type: Literal["categorical"]
    choices: list[Scalar] = Field(min_length=1)
    ofat: list[Scalar] = []

    @model_validator(mode="after")
    def _check(self) -> CategoricalParam:
        missing = [v for v in self.ofat if v not in self.choices]
        if missing:
            raise ValueError(f"ofat values {missing} are not among choices {self.choices}")
        return self


def _check_range(low: float, high: float, log: bool, ofat: list[Any]) -> None:
    if low >= high:
        raise ValueError(f"low ({low}) must be below high ({high})")
    if log and low <= 0:
        raise ValueError(f"log scale needs low > 0 (got {low})")
    outside = [v for v in ofat if not low <= v <= high]
    if outside:
        raise ValueError(f"ofat values {outside} lie outside [{low}, {high}]")


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


class ObjectiveSpec(StrictModel):
    metric: str = "f1"
    direction: Literal["maximize", "minimize"] | None = None

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in OBJECTIVE_METRICS:
            raise ValueError(
                f"unknown metric '{metric}'{suggest(metric, set(OBJECTIVE_METRICS))}; "
                f"expected one of {', '.join(OBJECTIVE_METRICS)}"
            )
        return metric

    @property
    def maximize(self) -> bool:
        if self.direction is None:
            return self.metric != "loss"
        return self.direction == "maximize"


class WandbSpec(StrictModel):
    mode: Literal["auto", "online", "offline", "disabled"] = "auto"
    project: str = "sweepctl"
    entity: str | None = None
    tags: list[str] = []


class TrackingSpec(StrictModel):
    wandb: WandbSpec = WandbSpec()


class SweepSpec(StrictModel):
    name: str
    description: str | None = None
    model: str
    model_args: dict[str, Any] = {}
    dataset: DatasetSpec
    training: dict[str, Any] = {}
    objective: ObjectiveSpec = ObjectiveSpec()
    search_space: dict[str, Param] = {}
    tracking: TrackingSpec = TrackingSpec()
    stages: list[StageSpec] = []
    resources: ResourcesSpec = ResourcesSpec()
    pruning: PruningSpec = PruningSpec()
    retries: RetriesSpec = RetriesSpec()
    budget: BudgetSpec = BudgetSpec()
    notify: NotifySpec = NotifySpec()

    @field_validator("stages")
    @classmethod
    def _plan_matches_space(
        cls, stages: list[StageSpecBase], info: ValidationInfo
    ) -> list[StageSpecBase]:
        if "search_space" not in info.data:
            return stages  # it failed its own validation, which is already reported
        check_plan(stages, info.data["search_space"])
        return stages

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not SWEEP_NAME.match(name):
            raise ValueError(
                "expected 1-100 characters of letters, digits, '.', '_' or '-', "
                f"starting with a letter or digit (got {name!r})"
            )
        return name

    @field_validator("training")
    @classmethod
    def _known_training_keys(cls, training: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        known = training_argument_names() | EXTRA_TRAINING_KEYS
        for key in training:
            if key in OWNED_TRAINING_KEYS:
                raise FieldError(key, f"set by sweepctl: {OWNED_TRAINING_KEYS[key]}")
            if key not in known:
                raise FieldError(
                    key, f"unknown key: not a TrainingArguments field{suggest(key, known)}"
                )
        strategy = training.get("eval_strategy", "epoch")
        if strategy not in ("epoch", "steps"):
            raise FieldError(
                "eval_strategy",
                f"expected 'epoch' or 'steps' (got {strategy!r}): sweepctl evaluates to "
                "record metrics and pick the best checkpoint",
            )
        check_training_values(training, resolved=(info.context or {}).get(RESOLVED, False))
        return training

    @field_validator("search_space")
    @classmethod
    def _tunable_names(cls, space: dict[str, Param]) -> dict[str, Param]:
        for name, param in space.items():
            if name in OWNED_TRAINING_KEYS:
                raise FieldError(name, "set by sweepctl and cannot be searched")
            values = param.choices if param.type == "categorical" else [param.low, param.high]
            for value in [*values, *param.ofat]:
                check_hyperparameter(name, value)  # every value it can take must be valid
        return space

    @property
    def eval_strategy(self) -> str:
        return str(self.training.get("eval_strategy", "epoch"))

    @property
    def seed(self) -> int:
        return int(self.training.get("seed", 42))


def tunable_parameter_kind(name: str) -> Literal["training", "dataset", "model"]:
    """Where a bare hyperparameter name lands: TrainingArguments, the tokenizer, or the model
    config. Anything not known to the first two is taken as a model-config key and checked
    against the real config when the model loads."""
    if name in training_argument_names() or name in EXTRA_TRAINING_KEYS:
        return "training"
    if name in DATASET_HYPERPARAMETERS:
        return "dataset"
    return "model"


def format_validation_error(error: ValidationError, source: str) -> str:
    """Every error, one `source: field: message` line each, unknown keys first: a misspelt
    key (`nmae:`) is usually why a required one (`name`) is missing, so the line that names
    it, with its suggestion, is the one to read first. Union branches can report the same
    line twice; it is printed once."""
    details = sorted(error.errors(), key=lambda item: item["type"] != "extra_forbidden")
    lines = [f"{source}: {_error_line(item)}" for item in details]
    return "\n".join(dict.fromkeys(lines))


def _error_line(item: ErrorDetails) -> str:
    """`field: message` for one pydantic error: the dotted field path, and what was expected."""
    loc = [str(p) for p in item["loc"] if not _is_union_tag(p)]
    cause = (item.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        loc.append(cause.key)
    field = ".".join(loc) or "(top level)"
    if item["type"] == "extra_forbidden":
        message = f"unknown key{suggest(loc[-1], _known_keys_at(loc[:-1]))}"
    elif item["type"] == "missing":
        message = "required key is missing"
    else:
        message = item["msg"].removeprefix("Value error, ")
    return f"{field}: {message}"


def _is_union_tag(part: object) -> bool:
    return part in ("float", "int", "categorical") or str(part).startswith("function-")


def _known_keys_at(loc: list[str]) -> set[str]:
    model: Any = SweepSpec
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return set()
        model = field.annotation
    return set(getattr(model, "model_fields", {}))


def parse_spec(data: Any, source: str, base_dir: Path) -> SweepSpec:
    """Validate a spec mapping; relative data paths are taken from `base_dir`."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a YAML mapping at the top level")
    data = _resolve_data_paths(data, base_dir)
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc, source)) from None


def load_yaml(text: str) -> Any:
    """Bounded and strict (sweepctl.spec.yaml_loader): duplicate keys, alias bombs and deep
    nesting are errors, so the loader is never what breaks."""
    return spec_yaml.load_yaml(text)


def load_spec(path: str | Path) -> SweepSpec:
    spec_path = Path(path)
    text = spec_yaml.read_spec_text(spec_path)
    return parse_spec_text(text, str(spec_path), spec_path.resolve().parent)


def parse_spec_text(text: str, source: str, base_dir: Path) -> SweepSpec:
    """A spec from YAML text (a file, or one pasted into the dashboard), same messages."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise SpecError(spec_yaml.yaml_error_message(exc, source)) from None
    except RecursionError:
        raise SpecError(f"{source}: nested too deeply to read") from None
    return parse_spec(data, source, base_dir)


def _resolve_data_paths(data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Make local data paths absolute so the spec means the same from any working directory.

    Only file builders get this: for hub datasets, data_files name files inside the hub repo.
    """
    dataset = data.get("dataset")
    if not isinstance(dataset, dict) or dataset.get("path", "csv") not in FILE_BUILDERS:
        return data
    dataset = dict(dataset)
    for key in ("data_files", "class_files"):
        files = dataset.get(key)
        if isinstance(files, dict):
            dataset[key] = {k: _absolute(v, base_dir) for k, v in files.items()}
    return {**data, "dataset": dataset}


def _absolute(value: Any, base_dir: Path) -> Any:
    if isinstance(value, list):
        return [_absolute(v, base_dir) for v in value]
    if isinstance(value, str) and "://" not in value:
        return str((base_dir / Path(value).expanduser()).resolve())
    return value


def warm_up() -> None:
    """Validate a minimal spec once, so the imports validation needs (transformers'
    TrainingArguments, torch) happen now: a long-running server calls this at start-up
    instead of making its first page view or submission wait seconds for them."""
    SweepSpec.model_validate(
        {
            "name": "warm-up",
            "model": "warm-up",
            "dataset": {
                "path": "csv",
                "data_files": {"train": "warm-up.csv"},
                "text_fields": ["text"],
            },
            "training": {"learning_rate": 1.0e-5},
        }
    )


def spec_to_dict(spec: SweepSpec) -> dict[str, Any]:
    """JSON-ready form that `parse_spec` accepts back (builder kwargs included), with
    notification URLs redacted: this is the form that is stored, exported and sent to a
    server. A `${VAR}` reference is kept as written; it holds no secret."""
    data = spec.model_dump(mode="json", by_alias=True)
    notify = data.get("notify") or {}
    if notify.get("webhook"):
        notify["webhook"] = stored_url(notify["webhook"])
    notify["apprise"] = [stored_url(url) for url in notify.get("apprise") or []]
    return data


def stored_url(url: str) -> str:
    return url if "${" in url else redact_url(url)
