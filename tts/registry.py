"""Registries: every pluggable kind (backends, generators, aggregators, searches, stopping rules,
extractors, graders, selectors, cost models, datasets, model-type registrars) is found by name among the built-ins, through the
Python entry-point group `tts.<kind>`, or by a dotted path `package.module:Name`.

Built-ins are listed as dotted paths, so listing them imports nothing heavy."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any

BUILTINS: dict[str, dict[str, str]] = {
    "backends": {
        "hf": "tts.backends.hf:HFBackend",
        "hf_head": "tts.backends.hf_head:HFHeadBackend",
        "vllm": "tts.backends.vllm:VLLMBackend",
        "openai": "tts.backends.openai_server:OpenAIBackend",
    },
    "generators": {
        "sample": "tts.strategies.sample:SampleGenerator",
        "deepconf_online": "tts.strategies.deepconf:DeepConfOnline",
        "atts": "tts.strategies.atts:ATTS",
        "agentless": "tts.strategies.agentless:Agentless",
        "reroute": "tts.strategies.reroute:Reroute",
        "perk": "tts.strategies.perk:PerkGenerator",
        "state_tuning": "tts.strategies.state_tuning:StateTuning",
    },
    "aggregators": {
        "majority": "tts.strategies.aggregators:Majority",
        "weighted": "tts.strategies.aggregators:Weighted",
        "best": "tts.strategies.aggregators:Best",
        "deepconf": "tts.strategies.deepconf:DeepConfVote",
        "hybrid": "tts.strategies.patch_select:Hybrid",
        "test_vote": "tts.strategies.patch_select:TestVote",
    },
    "searches": {
        "beam_search": "tts.strategies.beam:BeamSearch",
        "dvts": "tts.strategies.beam:DVTS",
        "budget_forcing": "tts.strategies.budget_forcing:BudgetForcing",
        "self_refine": "tts.strategies.refine:SelfRefine",
    },
    "stopping_rules": {
        "saturation": "tts.strategies.stopping:SaturationStop",
        "adaptive_consistency": "tts.strategies.stopping:AdaptiveConsistency",
    },
    "extractors": {
        "last_number": "tts.verifiers.extract:LastNumber",
        "regex": "tts.verifiers.extract:Regex",
        "boxed": "tts.verifiers.math_extract:Boxed",
        "answer_is": "tts.verifiers.math_extract:AnswerIs",
        "math": "tts.verifiers.math_extract:MathAnswer",
        "code": "tts.verifiers.code_verify:CodeExtractor",
        "patch": "tts.verifiers.code_verify:PatchExtractor",
    },
    "graders": {
        "exact": "tts.verifiers.exact:ExactGrader",
        "math": "tts.verifiers.math_grader:MathGrader",
        "code_tests": "tts.verifiers.code_verify:CodeTestsGrader",
        "swebench": "tts.verifiers.swebench:SWEBenchGrader",
    },
    "selectors": {
        "vote": "tts.verifiers.selectors:VoteSelector",
        "confidence": "tts.verifiers.selectors:ConfidenceSelector",
        "generative_rm": "tts.verifiers.reward_model:GenerativeRewardModel",
        "reward_model": "tts.verifiers.reward_model:ClassifierRewardModel",
        "prm": "tts.verifiers.prm:GenerativePRM",
        "prm_head": "tts.verifiers.prm:HeadPRM",
        "step_confidence": "tts.verifiers.prm:StepConfidence",
        "judge": "tts.verifiers.judge:Judge",
        "public_tests": "tts.verifiers.code_verify:PublicTests",
        "generated_tests": "tts.verifiers.code_verify:GeneratedTests",
        "swe_regression": "tts.verifiers.swe_signals:Regression",
        "swe_testgen": "tts.verifiers.swe_signals:TestGen",
    },
    "cost_models": {
        "kinetics": "tts.cost.model:KineticsCost",
        "dense_2pt": "tts.cost.model:Dense2PT",
    },
    "datasets": {
        "jsonl": "tts.evals.datasets:JsonlDataset",
        "toy_arith": "tts.evals.benchmarks:ToyArithmetic",
        "math500": "tts.evals.benchmarks:load_math500",
        "aime24": "tts.evals.benchmarks:load_aime24",
        "aime25": "tts.evals.benchmarks:load_aime25",
        "amc23": "tts.evals.benchmarks:load_amc23",
        "gsm8k": "tts.evals.benchmarks:load_gsm8k",
        "humaneval": "tts.evals.code:HumanEval",
        "mbpp": "tts.evals.code:MBPP",
        "kv_recall": "tts.evals.learning_tasks:KVRecall",
        "lact_recall": "tts.evals.learning_tasks:LaCTRecall",
        "hidden_rule": "tts.evals.learning_tasks:HiddenRule",
        "swebench_lite": "tts.evals.swebench:SWEBenchLite",
        "swebench_verified": "tts.evals.swebench:SWEBenchVerified",
    },
    # registrars of model architectures with transformers' Auto classes, run before a model loads
    # (so backends load tts's own models, and a plug-in's, without importing any method)
    "model_types": {
        "tts": "tts.learn.models:register",
    },
    # checkpoint formats an in-process backend opens besides transformers' own: each entry takes
    # (folder, device) and returns a `tts.backends.hf_load.Loaded`, or None when the folder is not its
    # format (a PERK checkpoint: its base model with the meta-learned adapter around it)
    "checkpoints": {
        "perk": "tts.learn.train_perk:open_checkpoint",
    },
}

KINDS = tuple(BUILTINS)


class RegistryError(LookupError):
    """A name that no registry, entry point or dotted path resolves."""


def load_dotted(path: str) -> Any:
    """Import `package.module:Name` (or `package.module.Name`)."""
    module, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, ValueError) as exc:
        raise RegistryError(f"cannot import '{path}': {exc}") from exc
    return obj


def _entry_points(kind: str) -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=f"tts.{kind}")}


def available(kind: str) -> dict[str, str]:
    """Every registered name of `kind` with where it comes from (a dotted path)."""
    _check_kind(kind)
    found = dict(BUILTINS[kind])
    for name, ep in _entry_points(kind).items():
        found.setdefault(name, f"{ep.value} (entry point of {ep.dist.name if ep.dist else '?'})")
    return found


def resolve(kind: str, name: str) -> Any:
    """The class or factory registered as `name` in `kind`."""
    _check_kind(kind)
    if name in BUILTINS[kind]:
        return load_dotted(BUILTINS[kind][name])
    eps = _entry_points(kind)
    if name in eps:
        try:
            return eps[name].load()
        except Exception as exc:
            raise RegistryError(f"{kind} '{name}': entry point failed to load: {exc}") from exc
    if ":" in name:
        return load_dotted(name)
    known = ", ".join(sorted(available(kind))) or "none"
    raise RegistryError(f"unknown {singular(kind)} '{name}' (known: {known}; "
                        f"or give a dotted path 'package.module:Name')")


def _check_kind(kind: str) -> None:
    if kind not in BUILTINS:
        raise RegistryError(f"unknown registry '{kind}' (kinds: {', '.join(KINDS)})")


def singular(kind: str) -> str:
    """'searches' -> 'search', 'stopping_rules' -> 'stopping rule' (for messages)."""
    word = kind[:-2] if kind.endswith("ches") else kind[:-1]
    return word.replace("_", " ")


def open_checkpoint(folder: str, device: str) -> Any:
    """The first `checkpoints` format that recognises `folder`, opened; None when none does."""
    for name in available("checkpoints"):
        opened = resolve("checkpoints", name)(folder, device)
        if opened is not None:
            return opened
    return None


def register_model_types() -> None:
    """Run every `model_types` registrar (tts's LaCT and RWKV-7, and any plug-in's): call before loading
    a model through transformers' Auto classes. Registrars are idempotent."""
    for name in available("model_types"):
        resolve("model_types", name)()
