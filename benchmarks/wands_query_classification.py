"""Few-shot query → product-class classification on WANDS queries: pretrained encoder vs from scratch.

``--data`` is the folder holding WANDS ``query.csv`` (tab-separated ``query_id, query,
query_class``). Classes with at least ``--min-per-class`` queries are kept (queries with an
empty class dropped); stratified k-fold cross-validation (3 folds, 3 shuffles in full mode)
scores each variant on the held-out fold: the majority class; from scratch, TF-IDF of word
1–2-grams and character 2–4-grams with logistic regression; the frozen pretrained sentence
encoder (``tfshop.layers.text.embed_texts``, all-MiniLM-L6-v2) with logistic regression and
with nearest class centroid.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from common import parser, write_result
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline, make_union

from tfshop.layers.text import embed_texts


def load_queries(folder, min_per_class: int) -> pd.DataFrame:
    path = folder / "query.csv"
    if not path.is_file():
        raise SystemExit(f"{folder}: no query.csv (WANDS query file expected)")
    queries = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    queries = queries[(queries["query_class"] != "") & (queries["query"].str.strip() != "")]
    counts = queries["query_class"].value_counts()
    return queries[queries["query_class"].isin(counts[counts >= min_per_class].index)].reset_index(drop=True)


def scratch_model():
    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
    )
    return make_pipeline(features, LogisticRegression(C=20, max_iter=2000))


def centroid_predict(train_x, train_y, test_x):
    classes = np.unique(train_y)
    centroids = np.stack([train_x[train_y == c].mean(axis=0) for c in classes])
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    return classes[np.argmax(test_x @ centroids.T, axis=1)]


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--min-per-class", type=int, default=3)
    args = p.parse_args()
    started = time.time()
    queries = load_queries(args.data, args.min_per_class)
    texts, labels = queries["query"].tolist(), queries["query_class"].to_numpy()
    print(f"{len(texts)} queries in {len(set(labels))} classes (>= {args.min_per_class} queries each)")
    encode_started = time.perf_counter()
    vectors = embed_texts(texts)
    encode_seconds = time.perf_counter() - encode_started
    shuffles = 1 if args.quick else 3
    scores: dict[str, list[tuple[float, float]]] = {}
    for seed in range(shuffles):
        for train, test in StratifiedKFold(3, shuffle=True, random_state=seed).split(texts, labels):
            majority = pd.Series(labels[train]).mode()[0]
            predictions = {
                "majority": np.full(len(test), majority),
                "scratch_tfidf_lr": scratch_model()
                .fit([texts[i] for i in train], labels[train])
                .predict([texts[i] for i in test]),
                "frozen_encoder_lr": LogisticRegression(C=20, max_iter=2000)
                .fit(vectors[train], labels[train])
                .predict(vectors[test]),
                "frozen_encoder_centroid": centroid_predict(vectors[train], labels[train], vectors[test]),
            }
            for name, predicted in predictions.items():
                scores.setdefault(name, []).append(
                    (
                        accuracy_score(labels[test], predicted),
                        f1_score(labels[test], predicted, average="macro", zero_division=0),
                    )
                )
    variants = {
        name: {
            "accuracy": round(float(np.mean([a for a, _ in folds])), 4),
            "accuracy_std": round(float(np.std([a for a, _ in folds])), 4),
            "macro_f1": round(float(np.mean([f for _, f in folds])), 4),
        }
        for name, folds in scores.items()
    }
    for name, metrics in variants.items():
        print(
            f"{name:>24}: accuracy {metrics['accuracy']:.4f} ± {metrics['accuracy_std']:.4f}, "
            f"macro-F1 {metrics['macro_f1']:.4f}"
        )
    write_result(
        args.out,
        f"WANDS query.csv, {len(texts)} queries in {len(set(labels))} classes with >= {args.min_per_class} "
        f"queries; stratified 3-fold CV x {shuffles} shuffles; mean over folds",
        started,
        accuracy=variants["frozen_encoder_lr"]["accuracy"],
        queries=len(texts),
        classes=len(set(labels)),
        encode_seconds=round(encode_seconds, 2),
        variants=variants,
    )


if __name__ == "__main__":
    main()
