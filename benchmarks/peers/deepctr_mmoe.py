"""DeepCTR's MMoE against tfshop's on a table (``peer_throughput.py --peer deepctr``).

``--data`` is a prepared shop dataset (``runs/demo/dataset`` or a bigger simulated shop's). Its
examples are flattened to one table: the scalar columns (item, category, brand, price, position,
hour, day, the user's profile; no texts, histories or hashed user id) and two binary labels,
click and purchase on every impression. Both contenders train an MMoE with the same sizes on
the same rows: 4 experts of ``--expert-units``, one tower layer of ``--tower-units`` per task,
embeddings of ``--embedding-dim``, Adam at ``--learning-rate`` (constant), batch ``--batch``,
``--epochs`` epochs, no dropout and no regularisation; tfshop through its tabular prepare and
its ``train`` (TensorBoard scalars and best-epoch checkpoints on, weight histograms and backups
off), DeepCTR 0.9.4 from label-encoded NumPy arrays as its examples do (numbers standardised).
Test AUC per task is reported for both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from common import clock_tfshop_training, epoch_clock, epoch_timings

CATEGORICAL = ["item_id", "category", "top_category", "brand", "hour_of_day", "day_of_week"]
CATEGORICAL += ["age_band", "gender", "city_tier"]
NUMERIC = ["price", "position", "category_view_share", "price_sensitivity"]
LABELS = ["click", "purchase"]
TASKS = {"ctr": "click", "purchase": "purchase"}


def add_arguments(p) -> None:
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--learning-rate", type=float, default=0.001)
    p.add_argument("--embedding-dim", type=int, default=8)
    p.add_argument("--expert-units", type=int, nargs="+", default=[64, 32])
    p.add_argument("--tower-units", type=int, default=32)


def protocol(args) -> str:
    return (
        f"MMoE (4 experts {args.expert_units}, towers [{args.tower_units}], embeddings {args.embedding_dim}) "
        f"on the flattened shop table, batch {args.batch}, Adam {args.learning_rate}, {args.epochs} epochs"
    )


def setup(args, out: Path) -> tuple[Path, int]:
    """(the flattened table, its training rows)."""
    table = flatten(args.data, out)
    return table, len(pd.read_parquet(table / "train.parquet", columns=LABELS[:1]))


def flatten(data_dir: Path, out: Path) -> Path:
    """The dataset's splits as Parquet tables of the scalar columns and the two labels."""
    from tfshop.data.input_config import InputConfig
    from tfshop.data.pipeline import make_dataset

    out.mkdir(parents=True)
    for split in ("train", "valid", "test"):
        parts = []
        config = InputConfig(batch_size=8192, deterministic=True)
        for features, labels in make_dataset(data_dir, split, config):
            columns = {c: features[c].numpy() for c in CATEGORICAL + NUMERIC}
            columns.update({c: labels[c].numpy() for c in LABELS})
            parts.append(pd.DataFrame(columns))
        frame = pd.concat(parts, ignore_index=True)
        for c in CATEGORICAL:
            frame[c] = frame[c].str.decode("utf-8")
        frame.to_parquet(out / f"{split}.parquet", index=False)
    return out


def run_tfshop(args) -> dict:
    from sklearn.metrics import roc_auc_score

    from tfshop.data.tabular import TabularConfig, TabularFeature, TabularTask, prepare_tabular
    from tfshop.models.config import ModelConfig
    from tfshop.training.config import TrainConfig
    from tfshop.training.train import train

    work = args.out.with_suffix("")
    tabular = TabularConfig(
        train=str(args.table / "train.parquet"),
        valid=str(args.table / "valid.parquet"),
        test=str(args.table / "test.parquet"),
        features=[TabularFeature(c, "categorical") for c in CATEGORICAL]
        + [TabularFeature(c, "numeric") for c in NUMERIC],
        tasks=[TabularTask(task, "binary", label, weight=1.0) for task, label in TASKS.items()],
    )
    dataset = prepare_tabular(tabular, work / "dataset")
    model_config = ModelConfig.of(
        block="mmoe",
        num_experts=4,
        expert_units=args.expert_units,
        tower_units=[args.tower_units],
        embedding_dim=args.embedding_dim,
        dropout=0.0,
        embedding_l2=0.0,
    )
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch,
        learning_rate=args.learning_rate,
        schedule="constant",
        early_stopping_patience=args.epochs,
        histogram_every=0,
        backup=False,
        monitor="val_loss",
        verbose=0,
    )
    clock = clock_tfshop_training()
    model = train(dataset, work / "train", model_config, config)
    test = pd.read_parquet(args.table / "test.parquet")
    x = {c: test[c].to_numpy(dtype=object if c in CATEGORICAL else np.float32) for c in CATEGORICAL + NUMERIC}
    scores = model.predict(x, batch_size=4096, verbose=0)
    rows = pd.read_parquet(args.table / "train.parquet").shape[0]
    return {
        **epoch_timings(clock, rows),
        **{f"{t}_auc": round(roc_auc_score(test[y] > 0, scores[t].ravel()), 4) for t, y in TASKS.items()},
        "parameters": int(model.count_params()),
    }


def run_peer(args) -> dict:
    import tensorflow as tf
    from deepctr.feature_column import DenseFeat, SparseFeat, get_feature_names
    from deepctr.models import MMOE
    from sklearn.metrics import roc_auc_score

    tf.keras.utils.set_random_seed(0)
    splits = {s: pd.read_parquet(args.table / f"{s}.parquet") for s in ("train", "valid", "test")}
    columns = []
    for c in CATEGORICAL:  # label encoding from the training rows; 0 for unseen values
        codes = {v: i + 1 for i, v in enumerate(sorted(splits["train"][c].unique()))}
        for frame in splits.values():
            frame[c] = frame[c].map(codes).fillna(0).astype("int32")
        columns.append(SparseFeat(c, len(codes) + 1, embedding_dim=args.embedding_dim))
    for c in NUMERIC:
        mean, std = splits["train"][c].mean(), splits["train"][c].std() or 1.0
        for frame in splits.values():
            frame[c] = ((frame[c].fillna(mean) - mean) / std).astype("float32")
        columns.append(DenseFeat(c, 1))
    model = MMOE(
        columns,
        num_experts=4,
        expert_dnn_hidden_units=tuple(args.expert_units),
        gate_dnn_hidden_units=(),
        tower_dnn_hidden_units=(args.tower_units,),
        task_types=("binary", "binary"),
        task_names=tuple(TASKS),
    )
    model.compile(
        tf.keras.optimizers.Adam(args.learning_rate),
        loss=["binary_crossentropy", "binary_crossentropy"],
        metrics=[tf.keras.metrics.AUC(name="auc")],
    )
    names = get_feature_names(columns)

    def xy(frame):
        return {n: frame[n].to_numpy() for n in names}, [frame[y].to_numpy() > 0 for y in TASKS.values()]

    clock = epoch_clock()
    model.fit(
        *xy(splits["train"]),
        batch_size=args.batch,
        epochs=args.epochs,
        validation_data=xy(splits["valid"]),
        callbacks=[clock],
        verbose=0,
    )
    x, y = xy(splits["test"])
    scores = model.predict(x, batch_size=4096, verbose=0)
    return {
        **epoch_timings(clock, len(splits["train"])),
        **{f"{task}_auc": round(roc_auc_score(t, s.ravel()), 4) for task, t, s in zip(TASKS, y, scores)},
        "parameters": int(model.count_params()),
    }
