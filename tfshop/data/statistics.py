"""Vocabularies and numeric statistics, accumulated over the training split partition by
partition (in worker processes) and merged in partition order."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

SAMPLE_CAP = 200_000
QUANTILES = np.linspace(0.1, 0.9, 9)


class VocabularyBuilder:
    """Counts the values of categorical, id and sequence columns."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter] = {}

    def add(self, name: str, values: pd.Series, nested: bool = False) -> None:
        if nested:
            values = values.explode().dropna()
        values = values[values != ""]
        self.counts.setdefault(name, Counter()).update(values.value_counts().to_dict())

    def merge(self, other: VocabularyBuilder) -> None:
        for name, counts in other.counts.items():
            self.counts.setdefault(name, Counter()).update(counts)

    def write(self, name: str, path: Path, min_count: int, max_size: int) -> int:
        """Writes ``name``'s tokens, most frequent first (ties by token), one a line."""
        counts = self.counts.get(name, Counter())
        tokens = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        if max_size:
            tokens = tokens[:max_size]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{t}\n" for t in tokens), encoding="utf-8")
        return len(tokens)

    def write_schema_vocabularies(self, schema, folder: Path, min_count: int, max_size: int) -> None:
        """Writes ``vocab/<name>.txt`` for every id, categorical and sequence feature that is not
        hashed and fills in its ``vocab`` and ``vocab_size``; a history feature shares the
        vocabulary of the feature its role names (its ids are that feature's)."""
        shared = schema.shared_vocabularies()
        looked_up = [f for f in schema.features if f.kind not in ("numeric", "text") and not f.hash_buckets]
        for f in looked_up:
            if f.name not in shared:
                f.vocab = f"vocab/{f.name}.txt"
                f.vocab_size = self.write(f.name, folder / f.vocab, min_count, max_size)
        for f in looked_up:
            if f.name in shared:
                target = schema.feature(shared[f.name])
                f.vocab, f.vocab_size = target.vocab, target.vocab_size

    def coverage(self, name: str, path: Path) -> float:
        """Share of counted occurrences whose token made it into the vocabulary at ``path``."""
        counts = self.counts.get(name, Counter())
        total = sum(counts.values())
        kept = set(path.read_text(encoding="utf-8").splitlines())
        return sum(c for t, c in counts.items() if t in kept) / total if total else 0.0


class NumericStatistics:
    """Count, mean, std, min, max and quantile boundaries of numeric columns."""

    def __init__(self) -> None:
        self.moments: dict[str, np.ndarray] = {}
        self.samples: dict[str, list[np.ndarray]] = {}

    def add(self, name: str, values: pd.Series) -> None:
        x = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype="float64")
        if len(x):
            moments = np.array([len(x), x.sum(), np.square(x).sum(), x.min(), x.max()])
            self._combine(name, moments, [x[:: max(1, len(x) // 10_000)]])

    def merge(self, other: NumericStatistics) -> None:
        """Adds what ``other`` counted, as if its ``add`` calls had been made here."""
        for name, moments in other.moments.items():
            self._combine(name, moments, other.samples[name])

    def _combine(self, name: str, moments: np.ndarray, samples: list[np.ndarray]) -> None:
        m = self.moments.setdefault(name, np.array([0.0, 0.0, 0.0, np.inf, -np.inf]))
        m[:3] += moments[:3]
        m[3], m[4] = min(m[3], moments[3]), max(m[4], moments[4])
        sample = self.samples.setdefault(name, [])
        for values in samples:
            sample.append(values)
            if sum(len(s) for s in sample) > SAMPLE_CAP:
                sample[:] = [np.concatenate(sample)[::2]]

    def summary(self, name: str) -> dict:
        if name not in self.moments:
            return {"count": 0}
        n, s, ss, lo, hi = self.moments[name]
        mean = s / n
        sample = np.concatenate(self.samples[name])
        return {
            "count": int(n),
            "mean": float(mean),
            "std": float(np.sqrt(max(ss / n - mean**2, 0.0))),
            "min": float(lo),
            "max": float(hi),
            "quantiles": sorted({float(q) for q in np.quantile(sample, QUANTILES)}),
        }


class TrainStatistics:
    """The vocabularies and numeric statistics of the schema's features and labels."""

    def __init__(self) -> None:
        self.vocab, self.numeric = VocabularyBuilder(), NumericStatistics()

    def add(self, schema, train: pd.DataFrame) -> None:
        """Counts the training examples ``train``."""
        for f in schema.features:
            if f.kind in ("categorical", "sequence") or (f.kind == "id" and not f.hash_buckets):
                values = train[f.name] if f.kind == "sequence" else train[f.name].astype(object)
                self.vocab.add(f.name, values, nested=f.kind == "sequence")
            elif f.kind == "numeric":
                self.numeric.add(f.name, train[f.name])
        for label in schema.labels:
            if label.name == "query_intent":
                self.vocab.add("query_intent", train["query_intent"])
            elif label.dtype == "float32":
                values = train[label.name].where(train[label.name] != label.default)
                self.numeric.add(f"label:{label.name}", values)

    def merge(self, other: TrainStatistics) -> None:
        self.vocab.merge(other.vocab)
        self.numeric.merge(other.numeric)
