"""Search relevance on Home Depot (query, product title) → grade in [1, 3]: transfer learning vs from scratch.

``--data`` is the folder holding the competition's ``train.csv.gz`` (``search_term``,
``product_title``, ``relevance``). Rows are split by K-fold cross-validation (3 folds, shuffled,
seed 0; ``--quick``: 4,000 sampled rows, 1 fold) and variants are scored by RMSE on the
held-out fold, predictions clipped to [1, 3]. The expensive variants (the students and the
fine-tuned encoders) run on the first fold only, ``student_joint`` and the fine-tuned encoders
scoring ``--sample-rows`` of its held-out rows; every variant is also scored on those same rows
(``fold1_sample``), for a like-for-like table:

* ``mean``: the train fold's mean grade;
* ``scratch``: a hashed bag of words and bigrams shared by query and title, trained from
  scratch with the pair head;
* ``frozen_encoder``: the pretrained sentence encoder's embeddings (all-MiniLM-L6-v2,
  frozen) with the pair head;
* ``student``: a bag-of-words student distilled from the encoder on the train fold's texts
  (``tfshop.training.distill``, ``STUDENT``: 50,000 hash buckets, 128 wide), its embeddings with
  the pair head;
* ``student_joint``: the same student trained together with the pair head, its loss the
  relevance MSE plus the distillation loss (−cosine to the encoder's embedding of the query and
  of the title, weight ``KD_WEIGHT`` each);
* ``finetuned_bi`` and ``finetuned_cross``: the whole encoder fine-tuned with the task, as a
  bi-encoder (query and title encoded apart, starting from the ``frozen_encoder`` variant's
  trained pair head) or a cross-encoder (``[CLS] query [SEP] title [SEP]`` in one pass,
  Dense(128, ReLU) → Dense(1)); one epoch over ``--finetune-rows`` rows of the train fold (2
  cores cannot afford more), encoder steps 0.05 × the head's (``TwoSpeedAdam``).

The pair head sees ``[q, t, q·t, |q − t|, cos(q, t)]`` → Dense(128, ReLU) → Dense(1) (bias
started at the mean grade), trained with MSE, stopping when the loss on 10 % of the train fold
stops falling. The encoder's embeddings of every distinct title and query are computed once
and cached under ``--cache`` (they do not depend on labels).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras as keras
from common import parser, write_result
from sklearn.model_selection import KFold

from tfshop.layers.text import HashedBagOfWords, embed_texts, pretrained_sentence_encoder
from tfshop.training.distill import StudentConfig, build_student, distill
from tfshop.training.optimizers import TwoSpeedAdam

MAX_EPOCHS = 15
KD_WEIGHT = 1.0
STUDENT = StudentConfig(num_bins=50_000, dim=128)  # a quarter of the default's tables: 2-core budget


def pair_head(q, t, mean: float):
    cosine = keras.layers.Dot(axes=1, normalize=True)([q, t])
    features = keras.layers.Concatenate()(
        [q, t, keras.layers.Multiply()([q, t]), tf.abs(keras.layers.Subtract()([q, t])), cosine]
    )
    hidden = keras.layers.Dense(128, activation="relu")(features)
    output = keras.layers.Dense(1, bias_initializer=keras.initializers.Constant(mean))
    return output(keras.layers.Dropout(0.1)(hidden))  # starts at the mean grade


def fit_predict(model, train_inputs, train_y, test_inputs, loss="mse", loss_weights=None) -> np.ndarray:
    """Trains until the relevance loss on 10 % of the train rows stops falling; predicts."""
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, loss_weights=loss_weights)
    monitor = "val_relevance_loss" if isinstance(loss, dict) else "val_loss"
    stop = keras.callbacks.EarlyStopping(monitor, patience=2, restore_best_weights=True)
    model.fit(
        train_inputs,
        train_y,
        batch_size=256,
        epochs=MAX_EPOCHS,
        validation_split=0.1,
        callbacks=[stop],
        verbose=0,
    )
    predicted = model.predict(test_inputs, batch_size=1024, verbose=0)
    predicted = predicted["relevance"] if isinstance(predicted, dict) else predicted
    return np.clip(predicted[:, 0], 1.0, 3.0)


def vector_model(dim: int, mean: float) -> keras.Model:
    q, t = keras.Input((dim,), name="q"), keras.Input((dim,), name="t")
    return keras.Model([q, t], pair_head(q, t, mean))


def scratch_model(mean: float) -> keras.Model:
    q = keras.Input((), dtype=tf.string, name="q")
    t = keras.Input((), dtype=tf.string, name="t")
    words = HashedBagOfWords(100_000, 64, name="words")
    return keras.Model([q, t], pair_head(words(q), words(t), mean))


def joint_student_model(output_dim: int, mean: float) -> keras.Model:
    """Student and pair head in one model; the student's vectors are outputs for the KD loss."""
    q = keras.Input((), dtype=tf.string, name="q")
    t = keras.Input((), dtype=tf.string, name="t")
    student = build_student(output_dim, STUDENT)
    student_q, student_t = student(q), student(t)
    outputs = {
        "relevance": keras.layers.Identity(name="relevance")(pair_head(student_q, student_t, mean)),
        "kd_q": keras.layers.Identity(name="kd_q")(student_q),
        "kd_t": keras.layers.Identity(name="kd_t")(student_t),
    }
    return keras.Model([q, t], outputs)


def finetuned_predict(
    strings, train, test, y, mean: float, cross: bool, rows: int, head: keras.Model | None = None
) -> np.ndarray:
    """Fine-tunes all-MiniLM-L6-v2 with a relevance head for one epoch on ``rows`` train rows.

    ``head``: for the bi-encoder, the pair head already trained on the frozen encoder's
    embeddings, which fine-tuning starts from (probe, then fine-tune).
    """
    q = keras.Input((), dtype=tf.string, name="q")
    t = keras.Input((), dtype=tf.string, name="t")
    encoder = pretrained_sentence_encoder(max_length=48 if cross else 32, trainable_layers=-1)
    if cross:
        hidden = keras.layers.Dense(128, activation="relu")(encoder((q, t)))
        score = keras.layers.Dense(1, bias_initializer=keras.initializers.Constant(mean))(hidden)
    else:
        score = head([encoder(q), encoder(t)])
    model = keras.Model([q, t], score)
    model.compile(optimizer=TwoSpeedAdam(1e-3, encoder.trainable_weights, 0.05), loss="mse")
    sample = np.random.default_rng(0).permutation(train)[:rows]
    started = time.perf_counter()
    model.fit(list(strings[sample].T), y[sample], batch_size=32, epochs=1, verbose=0)
    trained = time.perf_counter() - started
    predicted = model.predict(list(strings[test].T), batch_size=256, verbose=0)[:, 0]
    scored = time.perf_counter() - started - trained
    print(
        f"  fine-tuned {'cross' if cross else 'bi'}-encoder: {trained:.0f}s training, {scored:.0f}s scoring"
    )
    return np.clip(predicted, 1.0, 3.0)


def student_predict(texts, vectors, queries, titles, train, test, y, quick: bool) -> np.ndarray:
    """Distils the student on the train fold's texts, then fits the pair head on its vectors."""
    seen = np.unique(np.concatenate([queries[train], titles[train]]))
    student = distill(
        [texts[i] for i in seen],
        vectors[seen],
        dataclasses.replace(STUDENT, epochs=4 if quick else STUDENT.epochs),
    )
    student_vectors = student.predict(np.asarray(texts, dtype=object), batch_size=1024, verbose=0)
    return fit_predict(
        vector_model(student_vectors.shape[1], y[train].mean()),
        [student_vectors[queries[train]], student_vectors[titles[train]]],
        y[train],
        [student_vectors[queries[test]], student_vectors[titles[test]]],
    )


def teacher_vectors(texts: list[str], cache: Path) -> np.ndarray:
    key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
    path = cache / f"home_depot_minilm_{key}.npy"
    if path.is_file():
        print(f"encoder embeddings from {path}")
        return np.load(path)
    started = time.perf_counter()
    vectors = embed_texts(texts)
    print(f"encoded {len(texts)} texts in {time.perf_counter() - started:.0f}s")
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


class VariantRunner:
    """Runs one variant's ``predict(*args, **kwargs)``, keeps its predictions, prints RMSE and time."""

    def __init__(self, predictions: dict, fold: int, y: np.ndarray):
        self.predictions, self.fold, self.y = predictions, fold, y

    def __call__(self, name: str, rows: np.ndarray, predict, *args, **kwargs) -> None:
        began = time.time()
        self.predictions[name] = predict(*args, **kwargs)
        error = rmse(self.y[rows], self.predictions[name])
        print(f"  fold {self.fold} {name}: RMSE {error:.4f} on {len(rows)} rows ({time.time() - began:.0f}s)")


def rmse(y, predicted) -> float:
    return float(np.sqrt(np.mean((y - predicted) ** 2)))


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--cache", type=Path, default=Path("benchmarks/results/cache"))
    p.add_argument("--finetune-rows", type=int, default=4_000, help="train rows for the fine-tuned encoders")
    p.add_argument(
        "--sample-rows", type=int, default=6_000, help="first-fold held-out rows all variants are scored on"
    )
    args = p.parse_args()
    started = time.time()
    path = args.data / "train.csv.gz"
    if not path.is_file():
        raise SystemExit(f"{args.data}: no train.csv.gz (Home Depot search relevance expected)")
    rows = pd.read_csv(path, encoding="ISO-8859-1").dropna(
        subset=["search_term", "product_title", "relevance"]
    )
    if args.quick:
        rows = rows.sample(4000, random_state=0)
    rows = rows.reset_index(drop=True)
    texts = sorted(set(rows["search_term"]) | set(rows["product_title"]))
    index = {text: i for i, text in enumerate(texts)}
    queries = rows["search_term"].map(index).to_numpy()
    titles = rows["product_title"].map(index).to_numpy()
    y = rows["relevance"].to_numpy(np.float32)
    print(f"{len(rows)} rows, {len(texts)} distinct texts")
    encoded_at = time.time()
    vectors = teacher_vectors(texts, args.cache)
    encode_seconds = time.time() - encoded_at
    folds = list(KFold(3, shuffle=True, random_state=0).split(rows))[: 1 if args.quick else 3]
    strings = rows[["search_term", "product_title"]].to_numpy(dtype=object)
    scores: dict[str, list[float]] = {}
    on_sample: dict[str, float] = {}
    for number, (train, test) in enumerate(folds, 1):
        keras.utils.set_random_seed(number)
        mean = y[train].mean()
        sample = test[np.sort(np.random.default_rng(0).permutation(len(test))[: args.sample_rows])]
        predictions: dict[str, np.ndarray] = {}
        variant = VariantRunner(predictions, number, y)
        variant("mean", test, np.full, len(test), mean)
        variant(
            "scratch",
            test,
            fit_predict,
            scratch_model(mean),
            list(strings[train].T),
            y[train],
            list(strings[test].T),
        )
        frozen_head = vector_model(vectors.shape[1], mean)
        variant(
            "frozen_encoder",
            test,
            fit_predict,
            frozen_head,
            [vectors[queries[train]], vectors[titles[train]]],
            y[train],
            [vectors[queries[test]], vectors[titles[test]]],
        )
        if number == 1:
            variant(
                "student", test, student_predict, texts, vectors, queries, titles, train, test, y, args.quick
            )
            variant(
                "student_joint",
                sample,
                fit_predict,
                joint_student_model(vectors.shape[1], mean),
                list(strings[train].T),
                {"relevance": y[train], "kd_q": vectors[queries[train]], "kd_t": vectors[titles[train]]},
                list(strings[sample].T),
                loss={"relevance": "mse", "kd_q": "cosine_similarity", "kd_t": "cosine_similarity"},
                loss_weights={"relevance": 1.0, "kd_q": KD_WEIGHT, "kd_t": KD_WEIGHT},
            )
            for cross in (False, True):
                name = f"finetuned_{'cross' if cross else 'bi'}"
                variant(
                    name,
                    sample,
                    finetuned_predict,
                    strings,
                    train,
                    sample,
                    y,
                    mean,
                    cross,
                    args.finetune_rows,
                    frozen_head,
                )
        position = {row: i for i, row in enumerate(test)}
        for name, predicted in predictions.items():
            if len(predicted) == len(test):
                scores.setdefault(name, []).append(rmse(y[test], predicted))
                predicted = predicted[[position[row] for row in sample]]
            if number == 1:
                on_sample[name] = round(rmse(y[sample], predicted), 4)
    variants = {
        name: {"rmse": round(float(np.mean(v)), 4), "rmse_std": round(float(np.std(v)), 4), "folds": len(v)}
        for name, v in scores.items()
    }
    write_result(
        args.out,
        f"Home Depot train.csv, {len(rows)} rows ({'4,000-row sample' if args.quick else 'all'}), "
        f"titles only; {len(folds)} of 3 shuffled K-folds (seed 0); `variants`: RMSE on the held-out "
        f"fold, mean over folds; `fold1_sample`: every variant on the same "
        f"{min(args.sample_rows, len(folds[0][1]))} rows sampled from the first fold's held-out rows, "
        "the only rows the expensive variants (student_joint; fine-tuned encoders: one epoch over "
        f"{args.finetune_rows} train rows) score; encoder embeddings cached",
        started,
        rmse=variants["frozen_encoder"]["rmse"],
        encode_seconds=round(encode_seconds, 1),
        variants=variants,
        fold1_sample=on_sample,
    )


if __name__ == "__main__":
    main()
