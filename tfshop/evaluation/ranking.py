"""Top-K ranking metrics for next-item and retrieval evaluation, on numpy arrays.

Each query has exactly one held-out target item. Its **rank** is the number of other candidates
scored at least as high (0 = first; ties count against the target, so a model that scores
everything alike ranks last, not first). From ranks:

* ``hr@K`` (hit rate) — share of queries whose target ranks in the top K;
* ``recall@K`` — share of a query's relevant items in the top K, averaged; with one target per
  query it equals ``hr@K`` and is reported under both names;
* ``ndcg@K`` — ``1 / log2(rank + 2)`` when the target is in the top K, else 0, averaged;
* ``mrr`` — ``1 / (rank + 1)`` over the whole list, averaged.

Two protocols produce the ranks: **full ranking** scores the target against every item of the
catalogue (items the user already interacted with may be excluded, as is usual), **sampled**
ranks it among ``n`` negatives drawn uniformly from the items the user never interacted with
(SASRec's protocol, n = 100).
"""

from __future__ import annotations

import numpy as np


def ranking_metrics(ranks: np.ndarray, ks: tuple[int, ...] = (10, 20)) -> dict[str, float]:
    """HR, recall and NDCG at each K, and MRR, from 0-based ranks of the targets."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        raise ValueError("ranking_metrics: no ranks")
    out: dict[str, float] = {"count": int(ranks.size)}
    for k in ks:
        hit = ranks < k
        out[f"hr@{k}"] = float(hit.mean())
        out[f"recall@{k}"] = out[f"hr@{k}"]
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
    out["mrr"] = float((1.0 / (ranks + 1.0)).mean())
    return out


def target_ranks(scores: np.ndarray, targets: np.ndarray, exclude: np.ndarray | None = None) -> np.ndarray:
    """Rank of ``targets[i]`` (a column index) among the candidates of row ``i`` of ``scores``.

    ``exclude``: a boolean mask of ``scores``' shape; excluded candidates (never the target)
    do not compete.
    """
    scores = np.asarray(scores, dtype=np.float64)
    rows = np.arange(len(scores))
    target_scores = scores[rows, targets]
    competing = scores >= target_scores[:, None]
    competing[rows, targets] = False
    if exclude is not None:
        competing &= ~exclude
    return competing.sum(axis=1)


def sample_negatives(
    seen: list[set[int]], num_items: int, n: int, rng: np.random.Generator, first_id: int = 1
) -> np.ndarray:
    """For each user, ``n`` distinct item ids in ``[first_id, num_items]`` that are not in their
    ``seen`` set (history and target), drawn uniformly."""
    out = np.empty((len(seen), n), dtype=np.int64)
    for row, items in enumerate(seen):
        if num_items - first_id + 1 - len(items) < n:
            raise ValueError(f"sample_negatives: fewer than {n} unseen items for user row {row}")
        chosen: set[int] = set()
        while len(chosen) < n:
            for item in rng.integers(first_id, num_items + 1, size=2 * n):
                if item not in items and item not in chosen:
                    chosen.add(int(item))
                    if len(chosen) == n:
                        break
        out[row] = list(chosen)
    return out
