"""What a sweep leaves behind: summary.json, summary.md with its pictures, and `best`.

Made from the study and the trial folders on this machine, so any copy of the sweep folder
can rebuild it (`python -m job sweep-summary SWEEP_DIR`). `best` links the best trial's
folder only when that folder is here and complete: a link to a worse one would mislead.
"""

from __future__ import annotations

import io
import json
import math
import shlex
import warnings
from pathlib import Path
from typing import Any

from job.config.values import hide_passwords, printable
from job.errors import RunError
from job.outputs.folder import MANIFEST, read_run
from job.sweep import quiet
from job.system.files import replace_link, write_atomic

BEST = "best"
PICTURES_DIR = "pictures"
PICTURES = {   # plot_<name> in optuna.visualization.matplotlib → heading in summary.md
    "optimization_history": "Optimisation history",
    "param_importances": "Parameter importances",
    "parallel_coordinate": "Parallel coordinates",
}
STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
NOT_HERE = "not here"


def summarize(study, sweep_dir: Path) -> dict:
    """The sweep as data: objective, every trial but the surplus ones, the best trial."""
    sweep_dir = Path(sweep_dir)
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    kept = [t for t in trials if not t.user_attrs.get("surplus")]
    problems: dict[str, str] = {}   # two trials may share a run folder: read it once
    rows = [trial_row(t, sweep_dir, problems) for t in kept]
    # study.best_trial raises while no trial is complete
    best = study.best_trial if any(r["state"] == "COMPLETE" for r in rows) else None
    best_run = best.user_attrs.get("run") if best else None
    problem = run_problem(sweep_dir, best_run, problems) if best_run else None
    return {
        "study": study.study_name,
        "direction": study.direction.name.lower(),
        "objective": study.user_attrs.get("objective"),
        "model": study.user_attrs.get("model") or "best",
        "best_trial": best.number if best else None,
        "best_value": finite(best.value) if best else None,
        "best_run": best_run,
        "best_here": bool(best_run) and not problem,
        "best_problem": problem or None,
        "counts": {s: n for s in STATES if (n := sum(r["state"] == s for r in rows))},
        "surplus_skipped": len(trials) - len(kept),
        "trials": rows,
    }


def trial_row(trial, sweep_dir: Path, problems: dict[str, str]) -> dict:
    """One trial for summary.json; `here` says its run folder is here and complete."""
    run = trial.user_attrs.get("run")
    state = trial.state.name
    return {
        "number": trial.number,
        "state": state,
        "params": dict(trial.params),
        "value": finite(trial.value) if state == "COMPLETE" else None,
        "run": run,
        "here": bool(run) and not run_problem(sweep_dir, run, problems),
        "duration_seconds": (round(trial.duration.total_seconds(), 1)
                             if trial.duration is not None else None),
        "error": scrubbed(trial.user_attrs.get("error")),
        "handed_back": scrubbed(trial.user_attrs.get("handed_back")),
        "pruned": scrubbed(trial.user_attrs.get("pruned")),
    }


def run_problem(sweep_dir: Path, run: str, problems: dict[str, str]) -> str:
    """Why the run folder `run` cannot be linked ("" when it is here and complete)."""
    if run not in problems:
        path = sweep_dir / run
        if not (path / MANIFEST).is_file():
            problems[run] = NOT_HERE
        else:
            try:
                status = read_run(path, scores=()).status
                problems[run] = "" if status == "complete" else f"its manifest says {status}"
            except RunError as e:
                problems[run] = str(e)
    return problems[run]


def finite(value: float | None) -> float | None:
    """The number, or None for what JSON cannot hold (Optuna allows ±inf values)."""
    return value if value is not None and math.isfinite(value) else None


def scrubbed(text: Any) -> str | None:
    return None if text is None else hide_passwords(str(text))


def write_summary(study, sweep_dir: Path) -> Path:
    """Write summary.json, the pictures and summary.md into `sweep_dir`, and point
    `best` at the best trial's run folder when it is here; returns summary.md's path."""
    sweep_dir = Path(sweep_dir)
    summary = summarize(study, sweep_dir)
    pictures, missing = draw_pictures(study, summary)
    save_pictures(sweep_dir / PICTURES_DIR, pictures)
    summary["pictures"] = {name: f"{PICTURES_DIR}/{name}.png" for name in pictures}
    summary["missing_pictures"] = missing
    link_best(sweep_dir, summary["best_run"] if summary["best_here"] else None)
    write_atomic(sweep_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    write_atomic(sweep_dir / "summary.md", format_summary(summary, sweep_dir))
    return sweep_dir / "summary.md"


def link_best(sweep_dir: Path, run: str | None) -> None:
    """Point `best` at `run` in one rename, or remove a stale `best` when `run` is None."""
    link = sweep_dir / BEST
    if run is None:
        if link.is_symlink():
            link.unlink(missing_ok=True)
        return
    if link.exists() and not link.is_symlink():
        raise RunError(f"{link}: exists and is not a link; move it away and rebuild the "
                       "summary with `python -m job sweep-summary`")
    # Where the folder has no links (a mounted bucket) summary.md still names the best run.
    replace_link(link, Path(run).as_posix())


def save_pictures(folder: Path, pictures: dict[str, bytes]) -> None:
    """Write the PNGs; remove old ones not drawn this time, so summary.md and disk agree."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in PICTURES:
        if name in pictures:
            write_atomic(folder / f"{name}.png", pictures[name])
        else:
            (folder / f"{name}.png").unlink(missing_ok=True)


def picture_gaps(rows: list[dict]) -> dict[str, str]:
    """name → why the trials so far cannot make that picture; Optuna would draw an
    empty or misleading one (with a warning) rather than refuse."""
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    names = {k for r in complete for k in r["params"]}
    varied = [k for k in names
              if len({json.dumps(r["params"][k]) for r in complete if k in r["params"]}) > 1]
    few = (f"needs at least 2 complete trials, there {'is' if len(complete) == 1 else 'are'} "
           f"{len(complete)}")
    gaps = {}
    if not complete:
        gaps["optimization_history"] = "no trial has completed yet"
    if len(complete) < 2:
        gaps["param_importances"] = gaps["parallel_coordinate"] = few
    elif not varied:
        gaps["param_importances"] = ("no swept parameter has taken two different values "
                                     "in the complete trials yet")
    if complete and not names:
        gaps["parallel_coordinate"] = "the trials have no swept parameters"
    return gaps


def draw_pictures(study, summary: dict) -> tuple[dict[str, bytes], dict[str, str]]:
    """name → PNG for each picture the trials allow, and name → why for the others."""
    missing = picture_gaps(summary["trials"])
    if len(missing) == len(PICTURES):
        return {}, missing   # nothing to draw: do not pay for importing matplotlib
    import optuna.visualization.matplotlib as plots
    pictures = {}
    for name in PICTURES:
        if name not in missing:
            try:
                pictures[name] = draw(getattr(plots, f"plot_{name}"), study, objective_of(summary))
            except Exception as e:  # noqa: BLE001 - one picture must not cost the summary
                missing[name] = f"Optuna could not draw it ({printable(repr(e), 80)})"
    return pictures, {name: missing[name] for name in PICTURES if name in missing}


def draw(plot, study, objective: str) -> bytes:
    """One Optuna matplotlib chart as PNG bytes, leaving no figure open and pyplot's
    style as it was (Optuna switches it to ggplot for every chart)."""
    import matplotlib
    matplotlib.use("Agg")   # Optuna draws through pyplot; the job never shows a window
    import matplotlib.pyplot as plt
    before = set(plt.get_fignums())
    try:
        with matplotlib.rc_context(), quiet.experimental(), warnings.catch_warnings():
            # a parameter with one value so far gets a flat axis: the chart is still right
            warnings.filterwarnings("ignore", message="Attempting to set identical low and high")
            ax = plot(study, target_name=objective)
            if not ax.has_data() or (ax.patches and not any(p.get_width() for p in ax.patches)):
                raise ValueError("it drew nothing")
            buffer = io.BytesIO()
            ax.figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
            return buffer.getvalue()
    finally:
        for number in set(plt.get_fignums()) - before:
            plt.close(number)


def format_summary(summary: dict, sweep_dir: Path) -> str:
    """The whole summary.md."""
    objective = objective_of(summary)
    model = ("the run's best model" if summary["model"] == "best"
             else f"model `{summary['model']}`")
    counts = ", ".join(f"{n} {state}" for state, n in summary["counts"].items()) or "none yet"
    lines = [f"# Sweep {summary['study']}: {summary['direction']} {objective}", "",
             f"- objective: {summary['direction']} `{objective}` of {model}",
             f"- trials: {counts}",
             f"- best: {format_best(summary, sweep_dir)}"]
    if summary["surplus_skipped"]:
        n = summary["surplus_skipped"]
        lines.append(f"- {n} surplus trial{'s' if n != 1 else ''} skipped: asked for beyond "
                     f"the budget, {'they' if n != 1 else 'it'} did no work")
    return "\n".join(lines + ["", "## Trials", "", format_table(summary), "",
                              "## Pictures", "", format_pictures(summary), ""])


def format_best(summary: dict, sweep_dir: Path) -> str:
    """The best trial, its run folder, and what to do when that folder is not usable."""
    number, run = summary["best_trial"], summary["best_run"]
    if number is None:
        return "none yet: no trial has completed, so `best` is not set"
    best = (f"trial **{number}** ({objective_of(summary)} "
            f"**{format_value(summary['best_value'])}**)")
    if summary["best_here"]:
        return f"{best}, run folder [`{run}`]({run}), linked as `{BEST}`"
    if not run:
        return f"{best}, which recorded no run folder, so `{BEST}` is not set"
    rebuild = f"`python -m job sweep-summary {shlex.quote(str(sweep_dir))}`"
    where = ("is not here (the trial ran on another machine and its folder was not copied "
             "back)" if summary["best_problem"] == NOT_HERE
             else f"is here but not usable ({summary['best_problem']})")
    return (f"{best}, whose run folder `{run}` {where}: copy that trial's folder to "
            f"`{sweep_dir / run}` and rebuild the summary with {rebuild}. Until then "
            f"`{BEST}` is not set rather than pointing at a worse trial")


def format_table(summary: dict) -> str:
    """One markdown row per trial, one column per swept parameter."""
    rows = summary["trials"]
    if not rows:
        return "_No trials yet._"
    names = sorted({k for r in rows for k in r["params"]})
    lines = ["| trial | state | " + " | ".join([objective_of(summary), *names])
             + " | run | note |",
             "|--:|---|--:|" + "---|" * len(names) + "---|---|"]
    for r in rows:
        mark = " **(best)**" if r["number"] == summary["best_trial"] else ""
        params = [cell(format_param(r["params"][k])) if k in r["params"] else "-" for k in names]
        run = f"`{cell(r['run'])}`" if r["run"] else "-"
        if r["run"] and r["state"] == "COMPLETE" and not r["here"]:
            run += " (not usable here)"
        note = "; ".join(x for x in (r["error"], r["handed_back"], r.get("pruned")) if x)
        lines.append(" | ".join([f"| {r['number']}{mark}", r["state"], format_value(r["value"]),
                                 *params, run, cell(note, 100) + " |"]))
    return "\n".join(lines)


def format_pictures(summary: dict) -> str:
    """An image link for each picture drawn, one line on why for each one missing."""
    lines = []
    for name, title in PICTURES.items():
        if name in summary["pictures"]:
            lines += [f"### {title}", "", f"![{title.lower()}]({summary['pictures'][name]})", ""]
        else:
            lines += [f"_No {title.lower()} picture: {summary['missing_pictures'][name]}._", ""]
    return "\n".join(lines).rstrip("\n")


def objective_of(summary: dict) -> str:
    return summary["objective"] or "objective"


def format_value(value: float | None) -> str:
    """An objective value to 4 decimals, as report.md shows accuracy and loss."""
    if value is None:
        return "-"
    return f"{value:.4f}" if abs(value) >= 1e-3 else f"{value:.4g}"


def format_param(value: Any) -> str:
    """A parameter in its own terms: 0.001 stays 0.001, a YAML flow list stays as written."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def cell(text: str, limit: int = 200) -> str:
    """Text that cannot break a markdown table row, cut at `limit` characters."""
    return printable(str(text), limit).replace("|", "\\|")
