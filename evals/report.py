"""`tts report`: PNG scaling plots and a self-contained `report.html` (tables inline, plots as
files beside it) for one or more run folders, plus the TTSPM view of each sweep: the fitted
curve, saturation points N* for several ε, and predicted-vs-observed N* across problems. What
would mislead a reader — runs of different datasets on one axis, runs with identical curves, an
N* of a curve with no correct answer — is said as a warning beside the figures."""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tts.evals.metrics import pass_at_k
from tts.evals.summary import candidates_of, summarize_run_dir, sweep_columns
from tts.evals.table import pct
from tts.budget.ttspm import fit_ttspm, observed_saturation, pearson_r, saturation_point

EPSILONS = (0.001, 0.005, 0.01, 0.05)
MISFIT_NOTE = ("fits: 'no' when the fit's RMSE exceeds 0.02 (2 points): that curve is not of the form "
               "F_max·(1−(1−p)^N) (majority voting often is not: it can fall as N grows), so its N* says "
               "little. N*: the smallest N where one more sample adds less than ε of accuracy.")


@dataclass
class Report:
    runs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, summary)
    levels: list[dict[str, Any]] = field(default_factory=list)  # ARISE results
    ttspm: dict[str, dict[str, Any]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    datasets: dict[str, str] = field(default_factory=dict)  # run name -> dataset it ran on
    warnings: list[str] = field(default_factory=list)  # what a reader must know before reading the plots


def load_run(run_dir: Path) -> tuple[str, Any, dict[str, Any]]:
    """('run' | 'levels', recipe, summary or ARISE result) of a run folder."""
    from tts.recipe import parse_recipe
    from tts.records import read_records

    lock = Path(run_dir) / "recipe.lock.yaml"
    if not lock.exists():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no recipe.lock.yaml)")
    recipe = parse_recipe(yaml.safe_load(lock.read_text(encoding="utf-8"))["recipe"], str(lock))
    if recipe.levels is not None:
        from tts.evals.levels import arise_of

        return "levels", recipe, arise_of(Path(run_dir), recipe)
    records = read_records(run_dir)
    summary = summarize_run_dir(Path(run_dir), recipe, records)
    summary["n"] = recipe.strategy.n
    summary["_records"] = records
    return "run", recipe, summary


def dataset_label(recipe: Any) -> str:
    """The dataset a run used, as a reader would name it: `gsm8k`, `jsonl(path=/data/my.jsonl)`,
    `toy_arith(n_ops=2)`; how many problems it took (`count`) does not make it another dataset."""
    spec = recipe.dataset
    if isinstance(spec, str):
        return spec
    params = ", ".join(f"{k}={v}" for k, v in sorted(spec.items()) if k not in ("name", "count"))
    return f"{spec.get('name')}({params})" if params else str(spec.get("name"))


def run_names(run_dirs: list[Path]) -> list[str]:
    """Short distinct labels: each folder's name, with as many parent folders as it takes to tell it
    from the others (`a/run` and `b/run`, not `run` twice; `toy-40` stays `toy-40`)."""
    parts = [Path(d).resolve().parts for d in run_dirs]
    names = []
    for i, mine in enumerate(parts):
        others = [p for j, p in enumerate(parts) if j != i]
        depth = next((k for k in range(1, len(mine) + 1) if all(p[-k:] != mine[-k:] for p in others)), len(mine))
        names.append("/".join(mine[-depth:]))
    return [n if names.count(n) == 1 else f"{n} ({i + 1})" for i, n in enumerate(names)]  # a folder given twice


def _curve_key(summary: dict[str, Any]) -> str:
    from tts.evals.plots import series

    return json.dumps(series(summary), sort_keys=True, default=str)


def mixing_warnings(rep: Report) -> list[str]:
    """Different datasets on one axis, and runs whose curves coincide (one would hide the other)."""
    out = []
    used = sorted(set(rep.datasets.values()))
    if len(used) > 1:
        out.append("these runs used different datasets (" + "; ".join(
            f"{n}: {d}" for n, d in rep.datasets.items()) + "): their curves share an axis but are not comparable")
    seen: dict[str, str] = {}
    for name, summary in rep.runs:
        key = _curve_key(summary)
        if key in seen:
            out.append(f"{name} has exactly the same curves as {seen[key]} (drawn with a different line style)")
        else:
            seen[key] = name
    return out


def ttspm_view(records: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Any] | None:
    """Fit TTSPM to each sweep curve, N* per ε, and per-problem predicted (from p̂ = share of
    correct samples — grades, so evals only) vs observed (from pass@k on the grid) N*."""
    sweep = summary.get("sweep")
    if not sweep or len(sweep["rows"]) < 2:
        return None
    ns = [r["n"] for r in sweep["rows"]]
    fits = {}
    for col in sweep_columns(sweep):
        acc = [r[col]["mean"] for r in sweep["rows"]]
        if not any(acc):  # nothing correct at any N: there is no curve to fit and no saturation point
            fits[col] = {"undefined": "no correct answer at any N"}
            continue
        fit = fit_ttspm(ns, acc)
        fits[col] = {**fit.to_dict(), "n_star": {str(e): saturation_point(min(max(fit.p, 1e-9), 1.0), e, fit.f_max)
                                                 for e in EPSILONS}}
    validation = {}
    for eps in EPSILONS:
        pred, obs = [], []
        for r in records:
            cands = candidates_of(r)
            if r.get("status") != "ok" or len(cands) < max(ns):
                continue
            c = sum(1 for x in cands if (x.grade or 0) > 0)
            pred.append(min(saturation_point(c / len(cands), eps), max(ns)))
            obs.append(observed_saturation(ns, [pass_at_k(len(cands), c, k) for k in ns], eps))
        r_val = pearson_r(pred, obs) if len(pred) >= 2 else math.nan
        validation[str(eps)] = {"pearson_r": None if math.isnan(r_val) else r_val, "problems": len(pred),
                                **({"undefined": _why_no_r(pred, obs)} if math.isnan(r_val) else {})}
    return {"ns": ns, "fits": fits, "predicted_vs_observed": validation}


def _why_no_r(pred: list[float], obs: list[float]) -> str:
    if len(pred) < 2:
        return f"{len(pred)} problem(s) with samples at the largest N"
    side = "predicted" if len(set(pred)) == 1 else "observed"
    return f"the {side} N* is the same for every problem"


def build_report(run_dirs: list[Path]) -> Report:
    from tts.evals.plots import AXES, scaling_figure

    rep = Report()
    for d, name in zip(run_dirs, run_names(run_dirs)):
        kind, recipe, data = load_run(Path(d))
        rep.datasets[name] = dataset_label(recipe)
        if kind == "levels":
            rep.levels.append(data)
            continue
        records = data.pop("_records")
        rep.runs.append((name, data))
        view = ttspm_view(records, data)
        if view:
            rep.ttspm[name] = view
    rep.warnings = mixing_warnings(rep)
    for fig_name in AXES:
        if rep.runs or (rep.levels and fig_name == "accuracy_vs_tokens"):
            rep.figures[fig_name] = scaling_figure(fig_name, rep.runs, rep.levels)
    return rep


def write_report(rep: Report, out: Path) -> Path:
    """Save every figure as PNG and `report.html` referencing them; returns the HTML path."""
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in rep.figures.items():
        fig.savefig(out / f"{name}.png", dpi=110)
    page = out / "report.html"
    page.write_text(render_html(rep), encoding="utf-8")
    (out / "report.json").write_text(json.dumps({"runs": dict(rep.runs), "levels": rep.levels, "ttspm": rep.ttspm,
                                                 "datasets": rep.datasets, "warnings": rep.warnings},
                                                indent=1, default=str), encoding="utf-8")
    return page


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(rep: Report) -> str:
    parts = ["<h1>tts scaling report</h1>"]
    parts += [f'<p class="warn">warning: {html.escape(w)}</p>' for w in rep.warnings]
    if rep.runs:
        parts.append("<h2>Runs</h2>" + _table(
            ["run", "dataset", "problems", "ok", "accuracy % [95% CI]", "tokens/problem", "eFLOPs/problem",
             "cost model"],
            [[n, rep.datasets.get(n, ""), s["problems"], s["ok"], pct(s.get("accuracy")),
              f"{s['tokens_per_problem']:.1f}", f"{s['eflops_per_problem']:.3g}", s.get("cost_model", "")]
             for n, s in rep.runs]))
    for n, s in rep.runs:
        sweep = s.get("sweep")
        if sweep and sweep["rows"]:
            cols = sweep_columns(sweep)
            parts.append(f"<h3>{html.escape(n)}: accuracy % by N</h3>" + _table(
                ["N", *cols, "tokens/problem", "eFLOPs/problem"],
                [[r["n"], *(pct(r[c]) for c in cols), f"{r['tokens_per_problem']:.0f}",
                  f"{r.get('eflops_per_problem', 0):.3g}"] for r in sweep["rows"]]))
    if rep.levels:
        parts.append("<h2>ARISE</h2>" + _table(
            ["run", "models", "levels", "ARISE [95% CI]", "slope", "acc % by level", "tokens by level", "runs"],
            [[Path(r["run_dir"]).name, ", ".join(r["models"]), f"{r['field']}={r['values']}",
              f"{r['arise']:+.3f} [{r['arise_lo']:+.3f}, {r['arise_hi']:+.3f}]", f"{r['slope']:.2e}",
              " / ".join(f"{100 * a:.1f}" for a in r["level_accuracy"]),
              " / ".join(f"{t:.0f}" for t in r["level_tokens"]),
              " / ".join(str(k) for k in r["level_runs"])] for r in rep.levels]))
    for n, view in rep.ttspm.items():
        parts.append(f"<h3>{html.escape(n)}: TTSPM fit (F(N) = F_max·(1−(1−p)^N); N* is a "
                     f"reconstruction)</h3>" + _table(
                         ["curve", "p", "F_max", "RMSE", "fits", *(f"N* ε={e}" for e in EPSILONS)],
                         [_fit_row(c, f) for c, f in view["fits"].items()]) + f"<p>{html.escape(MISFIT_NOTE)}</p>")
        parts.append("<p>Predicted (p̂ from grades: evals only) vs observed N* per problem, Pearson r: " + ", ".join(
            f"ε={e}: " + (f"r={v['pearson_r']:.3f}" if v["pearson_r"] is not None else f"undefined ({v['undefined']})")
            + f" ({v['problems']} problems)" for e, v in view["predicted_vs_observed"].items()) + "</p>")
    for name in rep.figures:
        parts.append(f'<h2>{name.replace("_", " ")}</h2><img src="{name}.png" alt="{name}">')
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}"
             ".warn{background:#fff3cd;border:1px solid #e0c060;padding:6px 10px}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>tts report</title><style>{style}"
            f"</style></head><body>{''.join(parts)}</body></html>")


def _fit_row(curve: str, fit: dict[str, Any]) -> list[Any]:
    if "undefined" in fit:
        return [curve, "-", "-", "-", "-", *(f"undefined ({fit['undefined']})" for _ in EPSILONS)]
    return [curve, f"{fit['p']:.3f}", f"{fit['f_max']:.3f}", f"{fit['rmse']:.4f}", "no" if fit["misfit"] else "yes",
            *(fit["n_star"][str(e)] for e in EPSILONS)]
