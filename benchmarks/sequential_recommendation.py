"""Next-item recommendation on a sequence file, leave-one-out: sampled and full-ranking metrics.

``--data``: a folder holding one sequence file (and optionally an S3-Rec
``*_item2attributes.json(.gz)``), or the sequence file itself, in the SASRec layout (``user
item`` per line), the S3-Rec layout (``user item item ...`` per line) or the DynamicRec layout
(``item,item,...`` per line, ``.csv``), ids in time order, as in
../shared/datasets/amazon_video_games_sasrec, amazon_beauty_s3rec and dynamicrec_session_datasets.
The file goes through the pipeline's own path: ``ingest --format sequences`` and the next-item
``prepare`` (:mod:`tfshop.data.sequences`). Each user's last item is the test target, the one
before it the validation target, the rest trains (users with fewer than 3 items train on all of
theirs and are not evaluated), as in SASRec.

With ``--pretrain-epochs N`` the model is first pre-trained for N epochs on the training
sequences and the items' attributes (S3-Rec's MIP, AAP and MAP; :mod:`tfshop.models.pretrain`).
Fine-tuning (:mod:`tfshop.models.sequential`) trains on every next-item target of the training
sequences for at most ``--epochs`` epochs; after each it is scored on the validation targets
(sampled NDCG@10 of up to 5,000 users) and the best epoch is kept, stopping after
``--patience`` epochs without gain. Test: the history is everything before the last item, and

* ``sampled``: the target ranked among ``--negatives`` items (default 100) drawn uniformly from
  the items the user never interacted with (seed 0);
* ``full``: the target ranked among all items, the user's earlier items excluded.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from common import parser, write_result

from tfshop.data.sequences import SequenceData, load_sequences, prepare_sequences
from tfshop.data.sources import ingest_sequences
from tfshop.models.pretrain import pretrain
from tfshop.models.sequential import NextItemModel, evaluate_next_item, fit_next_item, restore_weights
from tfshop.models.sequential_config import PretrainConfig, SequentialConfig

QUICK_USERS = 3000


def sequence_files(path: Path) -> tuple[Path, Path | None]:
    """The sequence file and, beside it, the item attributes file if there is one."""
    if path.is_file():
        return path, None
    found = [p for p in sorted(path.iterdir()) if p.name.endswith((".txt", ".txt.gz", ".csv", ".csv.gz"))]
    found = [p for p in found if "_sample" not in p.name]
    if len(found) != 1:
        raise SystemExit(
            f"{path}: expected one sequence file (*.txt, *.csv, gzipped or not), found {found or 'none'}"
        )
    attributes = sorted(path.glob("*item2attributes.json*"))
    return found[0], attributes[0] if attributes else None


def sequence_data(data: Path) -> tuple[SequenceData, Path]:
    """The next-item dataset of a sequence file (or its folder), through ingest and prepare."""
    path, attributes = sequence_files(data)
    with tempfile.TemporaryDirectory() as scratch:
        shop = ingest_sequences(path, Path(scratch) / "shop", attributes=attributes)
        prepare_sequences(shop, Path(scratch) / "dataset")
        return load_sequences(Path(scratch) / "dataset"), path


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--negatives", type=int, default=100, help="sampled protocol: negatives per target")
    p.add_argument("--epochs", type=int, default=200, help="at most; early stopping on validation")
    p.add_argument("--patience", type=int, default=5, help="epochs without validation gain before stopping")
    p.add_argument("--pretrain-epochs", type=int, default=0, help="S3-Rec pre-training epochs (0 = none)")
    p.add_argument(
        "--pretrained",
        type=Path,
        help="start from this saved pre-trained model (a pretrain/model); --pretrain-epochs more on top",
    )
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--loss", choices=["sampled", "full"], default="full")
    p.add_argument(
        "--validation", choices=["sampled", "full"], default="sampled", help="protocol of validation NDCG@10"
    )
    args = p.parse_args()
    started = time.time()
    data, path = sequence_data(args.data)
    if args.quick:
        data.users, data.sequences = data.users[:QUICK_USERS], data.sequences[:QUICK_USERS]
    train = data.split("train")[0]
    valid_histories, valid_targets = (part[:5000] for part in data.split("valid"))
    histories, targets = data.split("test")
    print(
        f"{path.name}: {len(data.sequences)} users, {data.num_items} items, "
        f"{sum(map(len, data.sequences))} actions, {len(data.attribute_names)} attributes; "
        f"{len(targets)} users evaluated"
    )
    config = SequentialConfig(
        max_length=50,
        dim=args.dim,
        dropout=args.dropout,
        loss=args.loss,
        epochs=2 if args.quick else args.epochs,
        patience=args.patience,
        eval_negatives=args.negatives,
        validation_protocol=args.validation,
    )
    model = NextItemModel(data.num_items, config, data.train_counts())
    pretrain_config = PretrainConfig(epochs=1 if args.quick else args.pretrain_epochs)
    pretrain_seconds = pretrain_examples = 0.0
    if args.pretrained:
        if (args.pretrained / "item_ids.txt").read_text().split() != data.item_ids:
            raise SystemExit(f"{args.pretrained}: pre-trained on other item ids")
        restore_weights(model, args.pretrained)
    if args.pretrain_epochs:
        at = time.time()
        pretrain(model, train, data.attribute_matrix(), pretrain_config)
        pretrain_seconds = time.time() - at
        pretrain_examples = sum(1 for s in train if s) * pretrain_config.epochs

    def validate() -> float:
        metrics = evaluate_next_item(model, valid_histories, valid_targets, args.validation, args.negatives)
        return metrics["ndcg@10"]

    trained_at = time.time()
    history = fit_next_item(model, train, validate)
    train_seconds = time.time() - trained_at
    examples = sum(len(s) - 1 for s in train if len(s) >= 2) * len(history.epoch)
    sampled = evaluate_next_item(model, histories, targets, "sampled", args.negatives)
    full = evaluate_next_item(model, histories, targets, "full")
    print(f"sampled ({args.negatives} negatives): {sampled}\nfull ranking: {full}")
    pretrained = f"pre-trained {pretrain_config.epochs} epochs, then " if args.pretrain_epochs else ""
    if args.pretrained:
        pretrained = f"started from {args.pretrained}, {pretrained or 'then '}"
    write_result(
        args.out,
        f"{path.name}: leave-one-out ({len(targets)} test users), {args.negatives} uniform sampled "
        "negatives not in the user's items (seed 0), and full ranking over all items with the "
        f"user's earlier items excluded; {pretrained}best of {len(history.epoch)} epochs by validation "
        f"{args.validation} NDCG@10"
        + (f" (quick: first {QUICK_USERS} users, 2 epochs)" if args.quick else ""),
        started,
        **{key: round(value, 4) for key, value in sampled.items() if key != "count"},
        full={key: round(value, 4) for key, value in full.items() if key != "count"},
        epochs=len(history.epoch),
        pretrain_seconds=round(pretrain_seconds, 1),
        pretrain_examples_per_sec=round(pretrain_examples / max(pretrain_seconds, 1e-9), 1),
        train_seconds=round(train_seconds, 1),
        examples_per_sec=round(examples / train_seconds, 1),
        config=asdict(config),
        pretrain_config=asdict(pretrain_config) if args.pretrain_epochs else None,
    )


if __name__ == "__main__":
    main()
