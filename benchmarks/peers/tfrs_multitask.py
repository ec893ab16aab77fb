"""The TensorFlow Recommenders multitask tutorial's model against tfshop's (``--peer tfrs``).

``--data``: the ml-100k folder with ``tfrs_tutorial_split.jsonl.gz`` (the tutorial's 80,000
training and 20,000 test ratings as user id, movie title and rating) and ``u.data``/``u.item``/
``u.user``. Both contenders train the tutorial's joint model on the 80,000 rows, without a
validation split: user and title embeddings of ``--embedding-dim`` from vocabularies, a rating
MLP 256-128-1 over the two embeddings (mean squared error), a two-tower retrieval task whose
towers are the embeddings themselves (a softmax over the batch's titles, no temperature, no
popularity correction), Adagrad at ``--learning-rate``, batch ``--batch``, ``--epochs`` epochs,
rating and retrieval weighted 1 : 1 as the tutorial does. The tutorial's retrieval loss is a
sum over the batch and its rating loss a mean; tfshop's losses are means, so its retrieval
weight is the batch size. tfshop also masks accidental hits (a title that is another row's
positive in the batch); TFRS computes its top-k metrics on the test rows only here (the
tutorial computes them in every training step too, which would only slow it down).

tfshop runs through its own prepare (``split: given``, no history, a vocabulary of user ids) and
``train`` with the config keys that express this model (``model.features``, ``model.retrieval``
with ``trains_embeddings``, ``projection``, ``normalize``, ``popularity_correction`` and
``match_feature`` off, ``train.validation: false``; TensorBoard scalars and checkpoints on,
histograms and backups off). Test metrics, computed the same way for both: ``top100``, the
share of test rows whose title is among the user's 100 best-scored of all titles (ties count
against), and the rating ``rmse``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from common import clock_tfshop_training, epoch_clock, epoch_timings

SPLIT_FILE = "tfrs_tutorial_split.jsonl.gz"


def add_arguments(p) -> None:
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=8192)
    p.add_argument("--learning-rate", type=float, default=0.1)
    p.add_argument("--embedding-dim", type=int, default=32)


def protocol(args) -> str:
    return (
        f"TFRS multitask tutorial model (embeddings {args.embedding_dim}, rating MLP 256-128-1, "
        f"in-batch retrieval) on its MovieLens split, batch {args.batch}, Adagrad {args.learning_rate}, "
        f"{args.epochs} epochs, no validation; top-100 over all titles, ties against"
    )


def setup(args, out: Path) -> tuple[Path, int]:
    """(a folder with the split's rows as Parquet and tfshop's prepared dataset, training rows)."""
    from movielens_joint import tutorial_shop

    from tfshop.data.prepare import PrepareConfig, prepare

    out.mkdir(parents=True)
    rows = pd.read_json(args.data / SPLIT_FILE, lines=True, dtype={"user_id": str})
    rows.to_parquet(out / "rows.parquet", index=False)
    shop = tutorial_shop(args.data, out, valid_share=0.0)
    config = PrepareConfig(split="given", history_length=0, user_hash_buckets=0, max_actions_per_hour=0)
    prepare(shop, out / "dataset", config)
    return out, int((rows["split"] == "train").sum())


def run_tfshop(args) -> dict:
    from tfshop.models.config import ModelConfig
    from tfshop.models.towers import tower_models
    from tfshop.training.config import TrainConfig
    from tfshop.training.train import train

    model_config = ModelConfig.of(
        tasks=["rating", "retrieval"],
        features=["user_id", "item_id"],
        loss_weights={"rating": 1.0, "retrieval": float(args.batch)},
        block="shared_bottom",
        expert_units=[256, 128],
        tower_units=[],
        embedding_dim=args.embedding_dim,
        dropout=0.0,
        embedding_l2=0.0,
        retrieval={
            "temperature": 1.0,
            "trains_embeddings": True,
            "projection": False,
            "normalize": False,
            "popularity_correction": False,
            "match_feature": False,
        },
    )
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch,
        optimizer="adagrad",
        learning_rate=args.learning_rate,
        schedule="constant",
        validation=False,
        early_stopping_patience=args.epochs,
        histogram_every=0,
        backup=False,
        verbose=0,
    )
    clock = clock_tfshop_training()
    model = train(args.table / "dataset", args.out.with_suffix(""), model_config, config)
    train_rows, test, titles = _rows(args.table)
    query_tower, item_tower = tower_models(model, ["user_id"], ["item_id"])
    users = test["user_id"].to_numpy(dtype=object)
    scores = {
        "queries": query_tower.predict({"user_id": users}, batch_size=4096, verbose=0),
        "items": item_tower.predict({"item_id": titles.astype(object)}, batch_size=4096, verbose=0),
        "ratings": model.predict(
            {"user_id": users, "item_id": test["movie_title"].to_numpy(dtype=object)},
            batch_size=4096,
            verbose=0,
        )["rating"],
    }
    return {
        **epoch_timings(clock, train_rows),
        **_test_metrics(test, titles, **scores),
        "parameters": int(model.count_params()),
    }


def run_peer(args) -> dict:
    import tensorflow as tf
    import tensorflow_recommenders as tfrs

    tf.keras.utils.set_random_seed(0)
    train_rows, test, titles = _rows(args.table)
    rows = pd.read_parquet(args.table / "rows.parquet")
    train = rows[rows["split"] == "train"]
    users = np.unique(rows["user_id"])

    def lookup_and_embedding(vocabulary):
        return tf.keras.Sequential(
            [
                tf.keras.layers.StringLookup(vocabulary=vocabulary, mask_token=None),
                tf.keras.layers.Embedding(len(vocabulary) + 1, args.embedding_dim),
            ]
        )

    class Tutorial(tfrs.models.Model):
        def __init__(self):
            super().__init__()
            self.user_model = lookup_and_embedding(users)
            self.movie_model = lookup_and_embedding(titles)
            self.rating_model = tf.keras.Sequential(
                [
                    tf.keras.layers.Dense(256, activation="relu"),
                    tf.keras.layers.Dense(128, activation="relu"),
                    tf.keras.layers.Dense(1),
                ]
            )
            self.rating_task = tfrs.tasks.Ranking(loss=tf.keras.losses.MeanSquaredError())
            self.retrieval_task = tfrs.tasks.Retrieval()

        def call(self, features):
            user, movie = self.user_model(features["user_id"]), self.movie_model(features["movie_title"])
            return user, movie, self.rating_model(tf.concat([user, movie], axis=1))

        def compute_loss(self, features, training=False):
            user, movie, rating = self(features)
            rating_loss = self.rating_task(labels=features["rating"], predictions=rating)
            retrieval_loss = self.retrieval_task(user, movie, compute_metrics=not training)
            return rating_loss + retrieval_loss

    model = Tutorial()
    model.compile(optimizer=tf.keras.optimizers.Adagrad(args.learning_rate))
    columns = {c: train[c].to_numpy() for c in ("user_id", "movie_title")}
    columns["rating"] = train["rating"].to_numpy(np.float32)
    batches = tf.data.Dataset.from_tensor_slices(columns).shuffle(100_000, seed=42).batch(args.batch).cache()
    clock = epoch_clock()
    model.fit(batches, epochs=args.epochs, callbacks=[clock], verbose=0)
    users_of_test = tf.constant(test["user_id"].to_numpy(dtype=str))
    test_titles = tf.constant(test["movie_title"].to_numpy(dtype=str))
    queries = model.user_model(users_of_test).numpy()
    ratings = model.rating_model(tf.concat([queries, model.movie_model(test_titles)], axis=1)).numpy()
    items = model.movie_model(tf.constant(titles)).numpy()
    return {
        **epoch_timings(clock, train_rows),
        **_test_metrics(test, titles, queries, items, ratings),
        "parameters": int(model.count_params()),
    }


def _rows(folder: Path) -> tuple[int, pd.DataFrame, np.ndarray]:
    """(training rows, the test rows, every title in sorted order)."""
    rows = pd.read_parquet(folder / "rows.parquet")
    test = rows[rows["split"] == "test"].reset_index(drop=True)
    return int((rows["split"] == "train").sum()), test, np.unique(rows["movie_title"])


def _test_metrics(test: pd.DataFrame, titles: np.ndarray, queries, items, ratings) -> dict:
    """Top-100 accuracy over all titles (ties against) and rating RMSE on the test rows."""
    positives = np.searchsorted(titles, test["movie_title"].to_numpy())
    scores = np.asarray(queries) @ np.asarray(items).T
    own = scores[np.arange(len(test)), positives]
    rank = (scores >= own[:, None]).sum(axis=1)  # 1 = best; a tie counts against the row
    error = np.asarray(ratings).ravel() - test["rating"].to_numpy(np.float64)
    return {
        "top100": round(float((rank <= 100).mean()), 4),
        "rmse": round(float(np.sqrt((error**2).mean())), 4),
    }
