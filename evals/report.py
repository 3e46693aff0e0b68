"""`tts report`: PNG scaling plots and a self-contained `report.html` (tables inline, plots as
files beside it) for one or more run folders, plus the TTSPM view of each sweep: the fitted
curve, saturation points N* for several ε, and predicted-vs-observed N* across problems."""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evals.metrics import pass_at_k
from evals.summary import candidates_of, summarize_run_dir, sweep_columns
from evals.table import pct
from tts.budget.ttspm import fit_ttspm, observed_saturation, pearson_r, saturation_point

EPSILONS = (0.001, 0.005, 0.01, 0.05)


@dataclass
class Report:
    runs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (name, summary)
    levels: list[dict[str, Any]] = field(default_factory=list)  # ARISE results
    ttspm: dict[str, dict[str, Any]] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)


def load_run(run_dir: Path) -> tuple[str, Any, dict[str, Any]]:
    """('run' | 'levels', recipe, summary or ARISE result) of a run folder."""
    from tts.recipe import parse_recipe
    from tts.records import read_records

    lock = Path(run_dir) / "recipe.lock.yaml"
    if not lock.exists():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no recipe.lock.yaml)")
    recipe = parse_recipe(yaml.safe_load(lock.read_text(encoding="utf-8"))["recipe"], str(lock))
    if recipe.levels is not None:
        from tts.levels import arise_of

        return "levels", recipe, arise_of(Path(run_dir), recipe)
    records = read_records(run_dir)
    summary = summarize_run_dir(Path(run_dir), recipe, records)
    summary["n"] = recipe.strategy.n
    summary["_records"] = records
    return "run", recipe, summary


def ttspm_view(records: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Any] | None:
    """Fit TTSPM to each sweep curve, N* per ε, and per-problem predicted (from p̂ = share of
    correct samples — grades, so evals only) vs observed (from pass@k on the grid) N*."""
    sweep = summary.get("sweep")
    if not sweep or len(sweep["rows"]) < 2:
        return None
    ns = [r["n"] for r in sweep["rows"]]
    cols = sweep_columns(sweep)
    fits = {}
    for col in cols:
        fit = fit_ttspm(ns, [r[col]["mean"] for r in sweep["rows"]])
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
        validation[str(eps)] = {"pearson_r": r_val, "problems": len(pred)}
    return {"ns": ns, "fits": fits, "predicted_vs_observed": validation}


def build_report(run_dirs: list[Path]) -> Report:
    from evals.plots import AXES, scaling_figure

    rep = Report()
    for d in run_dirs:
        kind, _, data = load_run(Path(d))
        if kind == "levels":
            rep.levels.append(data)
            continue
        records = data.pop("_records")
        name = Path(d).name
        rep.runs.append((name, data))
        view = ttspm_view(records, data)
        if view:
            rep.ttspm[name] = view
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
    (out / "report.json").write_text(json.dumps({"runs": dict(rep.runs), "levels": rep.levels,
                                                 "ttspm": rep.ttspm}, indent=1, default=str), encoding="utf-8")
    return page


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(rep: Report) -> str:
    parts = ["<h1>tts scaling report</h1>"]
    if rep.runs:
        parts.append("<h2>Runs</h2>" + _table(
            ["run", "problems", "ok", "accuracy % [95% CI]", "tokens/problem", "eFLOPs/problem", "cost model"],
            [[n, s["problems"], s["ok"], pct(s.get("accuracy")), f"{s['tokens_per_problem']:.1f}",
              f"{s['eflops_per_problem']:.3g}", s.get("cost_model", "")] for n, s in rep.runs]))
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
                         ["curve", "p", "F_max", "RMSE", "misfit", *(f"N* ε={e}" for e in EPSILONS)],
                         [[c, f"{f['p']:.3f}", f"{f['f_max']:.3f}", f"{f['rmse']:.4f}", f["misfit"],
                           *(f["n_star"][str(e)] for e in EPSILONS)] for c, f in view["fits"].items()]))
        parts.append("<p>Predicted (p̂ from grades: evals only) vs observed N* per problem: " + ", ".join(
            f"ε={e}: r={v['pearson_r']:.3f} ({v['problems']} problems)"
            for e, v in view["predicted_vs_observed"].items()) + "</p>")
    for name in rep.figures:
        parts.append(f'<h2>{name.replace("_", " ")}</h2><img src="{name}.png" alt="{name}">')
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{max-width:100%}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>tts report</title><style>{style}"
            f"</style></head><body>{''.join(parts)}</body></html>")
