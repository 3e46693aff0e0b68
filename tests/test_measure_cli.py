"""`tts plan`, `tts arise` and `tts report` on real runs of the toy model, as the README shows them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TTS = str(Path(__import__("sys").executable).parent / "tts")


def tts(*args: str, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([TTS, *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    if ok:
        assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory) -> tuple[Path, Path]:
    """Two quickstart runs on 24 problems: the recipe as is (max 40 tokens), and max 24 tokens."""
    out = tmp_path_factory.mktemp("runs")
    long, short = out / "toy-40", out / "toy-24"
    recipe = str(ROOT / "recipes" / "quickstart.yaml")
    tts("run", recipe, "--limit", "24", "--out", str(long))
    tts("run", recipe, "--limit", "24", "--out", str(short), "--set", "roles.policy.sampling.max_tokens=24")
    return long, short


def test_summaries_and_locks_carry_kinetics_costs(toy_runs):
    summary = json.loads((toy_runs[0] / "summary.json").read_text())
    assert summary["cost_model"] == "kinetics(B200)" and summary["eflops_per_problem"] > 0
    rows = summary["sweep"]["rows"]
    assert [r["n"] for r in rows] == [1, 2, 4, 8, 16]
    # each N priced on its own: N=16 is the run itself; N=1 pays the shared prompt terms alone
    assert rows[-1]["eflops_per_problem"] == pytest.approx(summary["eflops_per_problem"], rel=1e-6)
    assert 16 * rows[0]["eflops_per_problem"] > rows[-1]["eflops_per_problem"]
    assert "policy" in (toy_runs[0] / "recipe.lock.yaml").read_text().split("shapes:")[1]


def test_report_plots_hold_the_summary_points(toy_runs, tmp_path):
    from tts.evals.report import build_report, write_report

    rep = build_report(list(toy_runs))
    page = write_report(rep, tmp_path / "rep")
    summary = dict(rep.runs)["toy-40"]
    rows = summary["sweep"]["rows"]
    lines = {ln.get_label(): ln for ln in rep.figures["accuracy_vs_n"].axes[0].lines}
    maj = lines["toy-40: majority"]
    assert list(maj.get_xdata()) == [1, 2, 4, 8, 16]
    assert list(maj.get_ydata()) == pytest.approx([100 * r["majority"]["mean"] for r in rows])  # % as in tables
    eff = {ln.get_label(): ln for ln in rep.figures["accuracy_vs_eflops"].axes[0].lines}["toy-24: pass"]
    short_rows = dict(rep.runs)["toy-24"]["sweep"]["rows"]
    assert list(eff.get_xdata()) == pytest.approx([r["eflops_per_problem"] for r in short_rows])
    text = page.read_text()
    for name in ("accuracy_vs_n", "accuracy_vs_tokens", "accuracy_vs_eflops"):
        assert f'src="{name}.png"' in text and (page.parent / f"{name}.png").stat().st_size > 5000
    assert "TTSPM fit" in text and "pearson" not in text.lower() or "r=" in text
    view = rep.ttspm["toy-40"]
    assert view["fits"]["pass"]["p"] > 0 and set(view["predicted_vs_observed"]) == {"0.001", "0.005", "0.01", "0.05"}


def test_report_says_what_would_mislead(toy_runs, tmp_path):
    """Runs of another dataset, two identical runs in folders of the same name, and a run with no
    correct answer: warned about, told apart, and no N* or r printed for what has none."""
    recipe = str(ROOT / "recipes" / "quickstart.yaml")
    starved = ["--limit", "8", "--set", "roles.policy.sampling.max_tokens=2"]  # no room to write '#answer'
    tts("run", recipe, *starved, "--out", str(tmp_path / "a" / "toy"))
    tts("run", recipe, *starved, "--out", str(tmp_path / "b" / "toy"))
    tts("run", recipe, "--limit", "8", "--set", "dataset.n_ops=3", "--out", str(tmp_path / "ops3"))
    runs = [toy_runs[0], tmp_path / "a" / "toy", tmp_path / "b" / "toy", tmp_path / "ops3"]
    proc = tts("report", *map(str, runs), "--out", str(tmp_path / "rep"))
    warned = " ".join(proc.stderr.split())
    assert "different datasets" in warned and "toy_arith(n_ops=3)" in warned
    assert "b/toy has exactly the same curves as a/toy" in warned
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert set(data["runs"]) == {"toy-40", "a/toy", "b/toy", "ops3"}
    starved_fit = data["ttspm"]["a/toy"]
    assert all(f == {"undefined": "no correct answer at any N"} for f in starved_fit["fits"].values())
    assert all(v["pearson_r"] is None and "same for every problem" in v["undefined"]
               for v in starved_fit["predicted_vs_observed"].values())
    page = (tmp_path / "rep" / "report.html").read_text()
    assert "nan" not in page and "warning: these runs used different datasets" in page
    assert "fits" in page and "RMSE exceeds 0.02" in page  # the column a reader could not decode is explained
    from tts.evals.report import build_report

    fig = build_report(runs).figures["accuracy_vs_n"]
    lines = {ln.get_label(): ln for ln in fig.axes[0].lines}
    a, b = lines["a/toy: majority"], lines["b/toy: majority"]
    assert (a.get_linestyle(), a.get_marker()) != (b.get_linestyle(), b.get_marker())  # both visible
    assert a.get_color() == b.get_color() != lines["a/toy: pass"].get_color()  # colour names the curve
    assert "%" in fig.axes[0].get_ylabel() and max(lines["toy-40: pass"].get_ydata()) > 1


def test_report_cli_and_bad_folder(toy_runs, tmp_path):
    proc = tts("report", *map(str, toy_runs), "--out", str(tmp_path / "r"))
    assert "report.html" in proc.stdout and (tmp_path / "r" / "accuracy_vs_n.png").exists()
    bad = tts("report", str(tmp_path), ok=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "not a run folder" in bad.stderr


def test_plan_from_runs(toy_runs, tmp_path):
    from tts.evals.planner import plan
    from tts.evals.traces import from_run, read_traces, write_traces

    sets = [from_run(d) for d in toy_runs]
    write_traces(sets, tmp_path / "t.jsonl")
    again = read_traces(tmp_path / "t.jsonl")
    assert [s.label for s in again] == [s.label for s in sets]
    costs = sorted(c["mean_eflops"] for c in plan(sets, 1e12)["configs"])
    mid = costs[len(costs) // 2]
    result = plan(sets, mid)
    for label, info in result["per_model"].items():
        assert info["mean_eflops"] <= mid * 1.5 or info["accuracy"] == 0
        assert result["oracle_accuracy"] >= info["accuracy"] - 1e-12
    proc = tts("plan", "--budget", f"{mid:g}", "--runs", str(toy_runs[0]), "--runs", str(toy_runs[1]),
               "--plot", str(tmp_path / "plan.png"), "--save-traces", str(tmp_path / "saved.jsonl"))
    assert "recommended" in proc.stdout and (tmp_path / "plan.png").exists()
    proc = tts("plan", "--budget", f"{mid:g}", "--traces", str(tmp_path / "saved.jsonl"),
               "--plot", str(tmp_path / "p2.png"))
    assert "recommended" in proc.stdout
    as_json = json.loads(tts("plan", "--budget", f"{mid:g}", "--traces", str(tmp_path / "saved.jsonl"),
                             "--plot", str(tmp_path / "p3.png"), "--metric", "pass", "--json").stdout)
    assert as_json["recommended"] == result["recommended"] and as_json["plot"] == str(tmp_path / "p3.png")
    default = tts("plan", "--budget", f"{mid:g}", "--runs", str(toy_runs[0]))
    assert "majority@N" in default.stdout and (toy_runs[0] / "plan.png").exists()  # not the cwd
    assert "perfect verifier" in tts("plan", "--budget", f"{mid:g}", "--runs", str(toy_runs[0]),
                                     "--metric", "pass").stdout
    tiny = tts("plan", "--budget", f"{costs[0] / 100:g}", "--runs", str(toy_runs[0]))
    assert "nothing fits" in tiny.stdout and "recommended" not in tiny.stdout
    assert plan(sets, costs[0] / 100)["recommended"] is None
    (tmp_path / "bad.jsonl").write_text('{"model": "x"}\n')
    bad = tts("plan", "--budget", "1e9", "--traces", str(tmp_path / "bad.jsonl"), ok=False)
    assert bad.returncode == 2 and "bad.jsonl:1" in bad.stderr and bad.stderr.count("\n") == 1


def test_arise_levels_run_through_the_cli(tmp_path):
    out = tmp_path / "arise"
    tts("run", str(ROOT / "recipes" / "toy-arise.yaml"), "--limit", "8", "--out", str(out),
        "--set", "levels.max_runs=4")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["level-0", "level-1", "level-2"]
    proc = tts("arise", str(out), "--json")
    (result,) = json.loads(proc.stdout)
    assert result["values"] == [1, 4, 16] and result["problems"] == 8
    assert result["level_tokens"][0] < result["level_tokens"][1] < result["level_tokens"][2]
    assert all(3 * 8 <= n <= 4 * 8 for n in result["level_runs"])
    table = tts("arise", str(out)).stdout
    assert "ARISE" in table and "slope" in table
    legend = " ".join(table.split())  # rich wraps long lines
    assert "at most 1" in legend and "once per step" in legend  # the legend a reader needs
    assert "ARISE" in tts("show", str(out)).stdout
    plain = tts("arise", str(tmp_path), ok=False)
    assert plain.returncode == 2 and "not a run folder" in plain.stderr
    levels = tts("plan", "--budget", "1e12", "--runs", str(out), ok=False)  # a levels folder is not one run
    assert levels.returncode == 2 and "levels (ARISE) run" in levels.stderr and "level-0/run-" in levels.stderr
