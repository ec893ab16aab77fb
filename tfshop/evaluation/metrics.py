"""Task metrics on numpy arrays (scikit-learn underneath), plus GAUC."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics


def binary_metrics(y: np.ndarray, p: np.ndarray, users: np.ndarray | None = None) -> dict[str, float]:
    """AUC, log-loss and (with ``users``) GAUC; AUC is NaN when only one class is present."""
    y, p = np.asarray(y, dtype=float), np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    out = {"count": int(len(y)), "positives": int(y.sum())}
    out["auc"] = float(metrics.roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")
    out["logloss"] = float(metrics.log_loss(y, p, labels=[0, 1])) if len(y) else float("nan")
    if users is not None:
        out["gauc"] = gauc(y, p, users)
    return out


def gauc(y: np.ndarray, p: np.ndarray, users: np.ndarray) -> float:
    """Per-user AUC averaged with impression weights, over users who have both classes.

    Each user's AUC comes from the ranks of their scores (ties share a rank, as in
    ``roc_auc_score``): (rank sum of positives − P(P+1)/2) / (P·N), all users at once.
    """
    frame = pd.DataFrame({"y": np.asarray(y, dtype=float), "p": p, "u": users})
    frame["rank"] = frame.groupby("u", sort=False)["p"].rank(method="average")
    frame["positive_rank"] = frame["rank"] * frame["y"]
    per_user = frame.groupby("u", sort=False).agg(
        rows=("y", "size"), positives=("y", "sum"), rank_sum=("positive_rank", "sum")
    )
    negatives = per_user["rows"] - per_user["positives"]
    both = (per_user["positives"] > 0) & (negatives > 0)
    per_user, negatives = per_user[both], negatives[both]
    if per_user.empty:
        return float("nan")
    positives = per_user["positives"]
    auc = (per_user["rank_sum"] - positives * (positives + 1) / 2) / (positives * negatives)
    return float((auc * per_user["rows"]).sum() / per_user["rows"].sum())


def multiclass_metrics(y: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    predicted = np.argmax(probabilities, axis=1)
    return {
        "count": int(len(y)),
        "accuracy": float(metrics.accuracy_score(y, predicted)),
        "macro_f1": float(metrics.f1_score(y, predicted, average="macro")),
    }


def multilabel_metrics(y: np.ndarray, probabilities: np.ndarray) -> dict[str, float]:
    """Micro- and macro-F1 of the labels predicted with probability >= 0.5, and the micro AUC
    (every row–label pair ranked together), which is threshold-free."""
    predicted = (probabilities >= 0.5).astype(int)
    y = y.astype(int)
    flat = y.ravel()
    return {
        "count": int(len(y)),
        "micro_auc": float(metrics.roc_auc_score(flat, probabilities.ravel()))
        if 0 < flat.sum() < len(flat)
        else float("nan"),
        "micro_f1": float(metrics.f1_score(y, predicted, average="micro", zero_division=0)),
        "macro_f1": float(metrics.f1_score(y, predicted, average="macro", zero_division=0)),
    }


def regression_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "count": int(len(y)),
        "rmse": float(np.sqrt(metrics.mean_squared_error(y, p))),
        "mae": float(metrics.mean_absolute_error(y, p)),
    }
