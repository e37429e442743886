"""Reports of training runs: PNG plots (matplotlib, Agg backend), JSON and Markdown.

Only files are written here; nothing is printed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from moodscope.constants import QUADRANT_MOODS, QUADRANTS
from moodscope.datasets.labels import PAPER_TO_RUSSELL
from moodscope.fileio import save_figure, write_text

PAPER_TABLE3 = {
    # Kerhalkar et al., Table 3, in the paper's own quadrant numbering (their Q2 = +V -A, Q4 = -V +A).
    "cnn": {"deam": (82, 0.79, 0.88, 0.89, 0.88), "mturk": (81, 0.81, 0.87, 0.81, 0.84)},
    "cnn-lstm": {"deam": (86, 0.82, 0.90, 0.90, 0.90), "mturk": (84, 0.80, 0.88, 0.86, 0.84)},
    "hybrid": {"deam": (89, 0.83, 0.91, 0.92, 0.92), "mturk": (87, 0.83, 0.89, 0.89, 0.85)},
}
"""(test accuracy %, F1 of paper-Q1..Q4) per model and dataset."""

MODEL_TITLES = {"cnn": "Model 1 (cnn)", "cnn-lstm": "Model 2 (cnn-lstm)", "hybrid": "Model 3 (hybrid)"}


def paper_table3_russell(model: str, dataset: str) -> dict:
    """The paper's Table 3 figures for ``model`` on ``dataset`` ('deam', 'mturk'), renumbered to
    Russell's quadrants: ``{"accuracy": 0.82, "f1": {"Q1": ..., ..., "Q4": ...}}``."""
    acc, *f1 = PAPER_TABLE3[model][dataset]
    paper = dict(zip(QUADRANTS, f1))
    return {"accuracy": acc / 100, "f1": {PAPER_TO_RUSSELL[q]: v for q, v in paper.items()}}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(confusion: list[list[int]], path: Path, title: str = "") -> Path:
    """A 4×4 confusion matrix (rows true, columns predicted) with counts and row percentages."""
    plt = _pyplot()
    cm = np.asarray(confusion, dtype=float)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    names = [f"{q}\n{QUADRANT_MOODS[q]}" for q in QUADRANTS]
    ax.set_xticks(range(len(QUADRANTS)), names, fontsize=7)
    ax.set_yticks(range(len(QUADRANTS)), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(QUADRANTS)):
        for j in range(len(QUADRANTS)):
            colour = "white" if rates[i, j] > 0.5 else "black"
            ax.text(j, i, f"{int(cm[i, j])}\n{rates[i, j]:.0%}", ha="center", va="center", fontsize=7, color=colour)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(history: list[dict], path: Path, title: str = "", best_epoch: int | None = None) -> Path:
    """Training and validation loss and score (accuracy, or CCC for valence/arousal) per epoch."""
    plt = _pyplot()
    epochs = [r["epoch"] + 1 for r in history]
    score = "ccc" if history and "train_ccc" in history[0] else "acc"  # the task's score (training.loop.OBJECTIVES)
    names = {"acc": ("cross-entropy", "accuracy"), "ccc": ("mean squared error", "CCC (mean of valence, arousal)")}
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, key, label in ((left, "loss", names[score][0]), (right, score, names[score][1])):
        ax.plot(epochs, [r[f"train_{key}"] for r in history], label="train")
        ax.plot(epochs, [r[f"val_{key}"] for r in history], label="validation")
        if best_epoch is not None and best_epoch >= 0:
            ax.axvline(best_epoch + 1, color="grey", ls=":", lw=1, label="best")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def plot_va_scatter(predictions: dict, path: Path) -> Path:
    """Estimated against annotated valence and arousal of test segments (one panel each, identity line)."""
    plt = _pyplot()
    pred = np.asarray(predictions["pred"], float).reshape(-1, 2)
    target = np.asarray(predictions["target"], float).reshape(-1, 2)
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.4))
    for d, (ax, name) in enumerate(zip(axes, ("valence", "arousal"))):
        ax.scatter(target[:, d], pred[:, d], s=6, alpha=0.5)
        ax.plot([-1, 1], [-1, 1], color="grey", lw=0.8, ls=":")
        ax.set_xlim(-1, 1)
        ax.set_ylim(-1, 1)
        ax.set_xlabel(f"annotated {name} [-1, 1]")
        ax.set_ylabel(f"estimated {name}")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def write_json(obj, path: Path) -> Path:
    """``obj`` as JSON (NaN, which JSON cannot hold, written as null), atomically."""
    from moodscope.fileio import atomic_write

    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(_finite(obj), indent=1, default=_json_default, allow_nan=False))
    return path


def _finite(x):
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(type(x))


def _pct(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def _mean_std(summary: dict, key: str, scale: float = 100, digits: int = 1) -> str:
    m = summary[key]
    if len(m["values"]) > 1:
        return f"{scale * m['mean']:.{digits}f} ± {scale * m['std']:.{digits}f}"
    return f"{scale * m['mean']:.{digits}f}"


def metrics_markdown(metrics: dict, title: str = "") -> str:
    """One level's metrics (from :func:`moodscope.training.evaluate.classification_metrics`) as Markdown."""
    lines = [f"#### {title}" if title else "", ""]
    lines.append(
        f"accuracy **{_pct(metrics['accuracy'])} %**, macro-F1 **{metrics['macro_f1']:.3f}** (n = {metrics['n']})"
    )
    lines += ["", "| quadrant | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for q in QUADRANTS:
        m = metrics["per_quadrant"][q]
        lines.append(
            f"| {q} {QUADRANT_MOODS[q]} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
        )
    lines += ["", "confusion (rows true, columns predicted, Q1..Q4):", "", "```"]
    lines += [" ".join(f"{v:5d}" for v in row) for row in metrics["confusion"]]
    lines += ["```", ""]
    return "\n".join(lines)


def va_markdown(metrics: dict, title: str = "") -> str:
    """One level's regression metrics (from :func:`moodscope.training.evaluate.regression_metrics`) as Markdown."""
    from moodscope.training.evaluate import VA_DIMENSIONS

    lines = [f"#### {title}" if title else "", "", f"n = {metrics['n']}", ""]
    lines += ["| dimension | R² | Pearson r | CCC | RMSE | MAE |", "|---|---|---|---|---|---|"]
    for dim in VA_DIMENSIONS:
        m = metrics[dim]
        lines.append(f"| {dim} | " + " | ".join(_num(m[k]) for k in ("r2", "pearson_r", "ccc", "rmse", "mae")) + " |")
    return "\n".join([*lines, ""])


def _num(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def va_summary_markdown(summary: dict) -> list[str]:
    """Mean ± std over folds of R², r, CCC and RMSE per level and dimension, as Markdown table lines."""
    from moodscope.training.evaluate import VA_DIMENSIONS

    lines = ["| level | dimension | R² | Pearson r | CCC | RMSE |", "|---|---|---|---|---|---|"]
    for level in ("segment", "song"):
        for dim in VA_DIMENSIONS:
            cells = [_mean_std_num(summary[level][f"{dim}_{m}"]) for m in ("r2", "pearson_r", "ccc", "rmse")]
            lines.append(f"| {level} | {dim} | " + " | ".join(cells) + " |")
    return lines


def _mean_std_num(m: dict) -> str:
    if len(m["values"]) > 1:
        return f"{_num(m['mean'])} ± {_num(m['std'])}"
    return _num(m["mean"])


VA_REPORT_NOTE = (
    "Valence/arousal regression. Segment level: every test segment against its own label; song level: the "
    "mean of a song's segment estimates against the song's static annotation. R² = 1 − SS_res/SS_tot, Pearson "
    "r, Lin's concordance correlation coefficient (CCC), RMSE on the [-1, 1] annotation scale (DEAM and MTurk "
    "1–9 ratings x ↦ (x − 5)/4, PMEmo 0–1 ratings x ↦ 2x − 1); mean ± std over the test folds."
)


def write_run_report(result: dict, out_dir: Path, title: str = "") -> Path:
    """``result`` of :func:`moodscope.training.loop.run_experiment` → ``metrics.json``, ``report.md`` and, per
    fold, ``confusion-segment.png``, ``confusion-song.png`` and ``curves.png`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(result, out_dir / "metrics.json")
    name = title or f"{result['model']} / {result['protocol']} protocol"
    lines = [f"# {name}", ""]
    s = result["summary"]
    k = len(result["folds"])
    regression = result.get("task") == "va"
    version = f" moodscope {result['moodscope_version']}." if result.get("moodscope_version") else ""
    lines.append(f"{k} fold(s); training time {result['train_seconds']:.0f} s in all.{version}")
    lines.append("")
    if regression:
        lines += [VA_REPORT_NOTE, "", "Mean ± std over the test folds:", "", *va_summary_markdown(s), ""]
        if k > 1:
            lines += [f"Pooled over the {k} test folds (every song tested once):", ""]
            lines += [va_markdown(result["pooled"][level], f"{level} level, pooled") for level in ("segment", "song")]
        for fold in result["folds"]:
            if "test_predictions" in fold:
                plot_va_scatter(fold["test_predictions"], out_dir / f"fold{fold['fold']}" / "scatter.png")
    else:
        lines += [
            "| level | accuracy % | macro-F1 % | F1 Q1 | F1 Q2 | F1 Q3 | F1 Q4 |",
            "|---|---|---|---|---|---|---|",
        ]
        for level in ("segment", "song"):
            cells = [_mean_std(s[level], "accuracy"), _mean_std(s[level], "macro_f1")]
            cells += [_mean_std(s[level], f"f1_{q}", 1, 2) for q in QUADRANTS]
            lines.append(f"| {level} | " + " | ".join(cells) + " |")
    lines.append("")
    for fold in result["folds"]:
        d = out_dir / f"fold{fold['fold']}"
        tag = f"{result['model']} {result['protocol']} fold {fold['fold']}"
        plot_curves(fold["history"], d / "curves.png", tag, fold.get("best_epoch"))
        if not regression:
            for level in ("segment", "song"):
                plot_confusion(fold["metrics"][level]["confusion"], d / f"confusion-{level}.png", f"{tag} ({level})")
        lines.append(f"## Fold {fold['fold']}")
        lines.append("")
        lines.append(
            f"{fold['epochs']} epochs (best {fold['best_epoch'] + 1}), {fold['train_seconds']:.0f} s; "
            f"split sizes {fold['split_sizes']}; leakage {fold['leakage']}"
        )
        if fold.get("checkpoint_sha256"):
            lines += ["", f"Checkpoint `fold{fold['fold']}/best.pt`, sha256 `{fold['checkpoint_sha256']}`."]
        lines.append("")
        images = f"![curves](fold{fold['fold']}/curves.png)"
        if regression:
            images += f" ![estimates](fold{fold['fold']}/scatter.png)"
        else:
            images += f" ![confusion](fold{fold['fold']}/confusion-song.png)"
        lines += [images, ""]
        for level in ("segment", "song"):
            markdown = va_markdown if regression else metrics_markdown
            lines.append(markdown(fold["metrics"][level], f"{level} level"))
    return write_text(out_dir / "report.md", "\n".join(lines))


def table3_markdown(results: list[dict], dataset: str, level: str = "segment") -> str:
    """Our results shaped like the paper's Table 3 (accuracy %, per-quadrant F1 per model), one
    column per model × protocol, followed by the paper's own figures renumbered to Russell's."""
    models = [m for m in PAPER_TABLE3 if any(r["model"] == m for r in results)]
    protocols = [p for p in ("paper", "song") if any(r["protocol"] == p for r in results)]
    by_key = {(r["model"], r["protocol"]): r for r in results}
    header = ["", *[f"{MODEL_TITLES[m]} {dataset} {p}" for m in models for p in protocols]]
    header += [f"paper M{i + 1} {d}" for i, m in enumerate(PAPER_TABLE3) if m in models for d in ("DEAM", "MTurk")]
    rows = [["Test accuracy (%)"], *[[f"F1 {q}"] for q in QUADRANTS], ["macro-F1"]]
    for m in models:
        for p in protocols:
            r = by_key.get((m, p))
            s = r["summary"][level] if r else None
            rows[0].append(_mean_std(s, "accuracy") if s else "–")
            for i, q in enumerate(QUADRANTS):
                rows[1 + i].append(_mean_std(s, f"f1_{q}", 1, 2) if s else "–")
            rows[5].append(_mean_std(s, "macro_f1", 1, 2) if s else "–")
    for m in models:
        for d in ("deam", "mturk"):
            ref = paper_table3_russell(m, d)
            rows[0].append(f"{100 * ref['accuracy']:.0f}")
            for i, q in enumerate(QUADRANTS):
                rows[1 + i].append(f"{ref['f1'][q]:.2f}")
            rows[5].append(f"{np.mean(list(ref['f1'].values())):.2f}")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


RENUMBERING_NOTE = (
    "Quadrants are Russell's throughout (Q1 +valence +arousal happy/excited, Q2 −valence +arousal "
    "tense/angry, Q3 −valence −arousal sad/depressed, Q4 +valence −arousal calm/relaxed). The paper "
    "numbers Q2 and Q4 the other way round, so its Table 3 figures are shown renumbered: the paper's "
    "'Q2' F1 appears under Q4 here and its 'Q4' under Q2 (`moodscope.datasets.labels.PAPER_TO_RUSSELL`). The "
    "paper's macro-F1 is the mean of its four F1 values; the paper reports DEAM and MTurk, not 4Q."
)


def write_reproduce_report(results: list[dict], out_dir: Path, dataset: str, header: str = "") -> Path:
    """The reproduction report: Table-3-shaped tables at segment and song level, timing, leakage,
    and each run's own report under ``<model>-<protocol>/``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(results, out_dir / "results.json")
    lines = [f"# Reproduction of Kerhalkar et al., Table 3, on {dataset}", ""]
    if header:
        lines += [header, ""]
    lines += [RENUMBERING_NOTE, ""]
    for level in ("segment", "song"):
        lines += [f"## {level.capitalize()} level", "", table3_markdown(results, dataset, level), ""]
    lines += [
        "## Runs",
        "",
        "| model | protocol | folds | epochs (best) | train s | test segments seen in train | "
        "test songs seen in train |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        folds = r["folds"]
        epochs = ", ".join(f"{f['epochs']} ({f['best_epoch'] + 1})" for f in folds)
        seg = np.mean([f["leakage"]["test_segments_in_train"] for f in folds])
        song = np.mean([f["leakage"]["test_songs_in_train"] for f in folds])
        lines.append(
            f"| {r['model']} | {r['protocol']} | {len(folds)} | {epochs} | {r['train_seconds']:.0f} | "
            f"{100 * seg:.0f} % | {100 * song:.0f} % |"
        )
        write_run_report(r, out_dir / f"{r['model']}-{r['protocol']}")
    lines.append("")
    return write_text(out_dir / "report.md", "\n".join(lines))
