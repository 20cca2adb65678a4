"""Report figures (PNG): bar charts with intervals, confusion matrices, GRPO reward curves. Each is written
atomically (temp file + rename), so a report folder never holds half a picture."""
from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def bar_chart(path: Path, results: dict[str, dict], keys: list[str], title: str,
              intervals: dict[str, dict] | None = None) -> None:
    """One group of bars per metric, one bar per model; intervals[model][key] = (low, high) draws error bars."""
    plt = _pyplot()
    names = list(results)
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(max(7, 1.3 * len(keys)), 4), dpi=120)
    for n, name in enumerate(names):
        values = [results[name][k] for k in keys]
        errors = None
        if intervals and name in intervals:
            low = [v - intervals[name][k][0] for v, k in zip(values, keys)]
            high = [intervals[name][k][1] - v for v, k in zip(values, keys)]
            errors = [low, high]
        bars = ax.bar([x + n * width for x in range(len(keys))], values, width, label=name,
                      yerr=errors, capsize=2 if errors else 0)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    # one word a line: BFCL's eleven long category names overlap on one line
    ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(keys))],
                  [k.upper().replace("_", "\n") for k in keys], fontsize=8)
    ax.set_ylabel("score (x100)" + (", 95% CI" if intervals else ""))
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)


def confusion_chart(path: Path, matrices: dict[str, dict], title: str) -> None:
    plt = _pyplot()
    names = list(matrices)
    fig, axes = plt.subplots(1, len(names), figsize=(3.6 * len(names), 3.6), dpi=120, squeeze=False)
    for ax, name in zip(axes[0], names):
        matrix = matrices[name]
        columns = list(next(iter(matrix.values())))
        values = [[matrix[t][p] for p in columns] for t in matrix]
        ax.imshow(values, cmap="Blues")
        for i, row in enumerate(values):
            for j, v in enumerate(row):
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                        color="white" if v > max(map(max, values)) / 2 else "black")
        ax.set_xticks(range(len(columns)), [c.replace("_", "\n") for c in columns], fontsize=7)
        ax.set_yticks(range(len(matrix)), [t.replace("_", "\n") for t in matrix], fontsize=7)
        ax.set_xlabel("predicted", fontsize=8)
        ax.set_title(name, fontsize=9)
    axes[0][0].set_ylabel("true", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def reward_chart(path: Path, log_history: list[dict], reward_names: list[str]) -> None:
    """GRPO reward per step: the weighted sum and each reward function."""
    rows = [row for row in log_history if "reward" in row]
    if not rows:
        return
    plt = _pyplot()
    steps = [row["step"] for row in rows]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.plot(steps, [row["reward"] for row in rows], marker="o", linewidth=2, label="reward (weighted sum)")
    for name in reward_names:
        key = f"rewards/{name}/mean"
        if all(key in row for row in rows):
            ax.plot(steps, [row[key] for row in rows], marker=".", alpha=0.7, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("mean reward")
    ax.set_title("GRPO reward")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def line_chart(path: Path, series: dict[str, dict[float, float]], xlabel: str, ylabel: str, title: str) -> None:
    """One line per series ({label: {x: y}}); series with the same label prefix before ':' share a colour,
    the first of them drawn solid, the next dashed."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    colours: dict[str, int] = {}
    seen: dict[str, int] = {}
    for label, points in series.items():
        group = label.split(":", 1)[0]
        colour = colours.setdefault(group, len(colours))
        style = ("-o", "--s", ":^")[min(seen.get(group, 0), 2)]
        seen[group] = seen.get(group, 0) + 1
        ax.plot(list(points), list(points.values()), style, color=f"C{colour}", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
