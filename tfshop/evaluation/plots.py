"""PNG plots of a run: loss curves per output, calibration and prediction histograms."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def write_plots(out: Path, history_file: Path, data: dict, binary_outputs: list[str]) -> list[Path]:
    """``loss_curves.png`` from the training history; ``calibration.png`` from ``data``, the
    test split as ``evaluate.collect`` returns it."""
    out.mkdir(parents=True, exist_ok=True)
    return [
        _loss_curves(out, json.loads(history_file.read_text())["epochs"]),
        _calibration(out, data, binary_outputs),
    ]


def _loss_curves(out: Path, epochs: dict) -> Path:
    names = sorted({k[: -len("_loss")] for k in epochs if k.endswith("_loss") and not k.startswith("val_")})
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(4 * max(len(names), 1), 3), squeeze=False)
    for ax, name in zip(axes[0], names):
        ax.plot(epochs[f"{name}_loss"], marker="o", label="train")
        ax.plot(epochs.get(f"val_{name}_loss", []), marker="o", label="valid")
        ax.set_title(f"{name} loss")
        ax.set_xlabel("epoch")
        ax.legend()
    fig.tight_layout()
    path = out / "loss_curves.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _calibration(out: Path, data: dict, binary: list[str]) -> Path:
    fig, axes = plt.subplots(2, max(len(binary), 1), figsize=(4 * max(len(binary), 1), 6), squeeze=False)
    for column, name in enumerate(binary):
        keep = data[f"w/{name}"] > 0
        y, p = data[f"y/{name}"][keep], data[f"p/{name}"][keep].reshape(-1)
        edges = np.unique(np.quantile(p, np.linspace(0, 1, 11)))
        bins = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
        mean_p = [p[bins == b].mean() for b in range(len(edges) - 1) if np.any(bins == b)]
        mean_y = [y[bins == b].mean() for b in range(len(edges) - 1) if np.any(bins == b)]
        ax = axes[0][column]
        ax.plot(mean_p, mean_y, marker="o")
        top = max(max(mean_p, default=0), max(mean_y, default=0)) * 1.05 or 1
        ax.plot([0, top], [0, top], linestyle="--", color="grey")
        ax.set_title(f"{name}: calibration (deciles)")
        ax.set_xlabel("mean prediction")
        ax.set_ylabel("observed rate")
        ax = axes[1][column]
        ax.hist([p[y == 0], p[y == 1]], bins=40, density=True, label=["negative", "positive"])
        ax.set_title(f"{name}: predictions")
        ax.legend()
    fig.tight_layout()
    path = out / "calibration.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
