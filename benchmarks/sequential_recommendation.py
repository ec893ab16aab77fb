"""Next-item recommendation on a sequence file, leave-one-out: sampled and full-ranking metrics.

``--data``: a folder holding one sequence file, or the file itself, in the SASRec layout (``user
item`` per line), the S3-Rec layout (``user item item ...`` per line) or the DynamicRec layout
(``item,item,...`` per line, ``.csv``), ids in time order, as in
../shared/datasets/amazon_video_games_sasrec, amazon_beauty_s3rec and dynamicrec_session_datasets.
Each user's last item is the test target, the one before it the validation target, the rest
trains (users with fewer than 3 items train on all of theirs and are not evaluated), as in SASRec. The model
(:mod:`tfshop.models.sequential`) trains on every next-item target of the training sequences;
after each epoch it is scored on the validation targets (sampled NDCG@10 of up to 5,000 users)
and the best epoch is kept. Test: the history is everything before the last item, and

* ``sampled``: the target ranked among ``--negatives`` items (default 100) drawn uniformly from
  the items the user never interacted with (seed 0);
* ``full``: the target ranked among all items, the user's earlier items excluded.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from common import parser, write_result

from tfshop.data.sources.sequences import read_sequences
from tfshop.models.sequential import (
    NextItemModel,
    SequentialConfig,
    evaluate_next_item,
    fit_next_item,
    item_counts,
)

VALIDATION_USERS = 5_000


def sequence_file(path: Path) -> Path:
    if path.is_file():
        return path
    found = [p for p in sorted(path.iterdir()) if p.name.endswith((".txt", ".txt.gz", ".csv", ".csv.gz"))]
    if len(found) != 1:
        raise SystemExit(
            f"{path}: expected one sequence file (*.txt, *.csv, gzipped or not), found {found or 'none'}"
        )
    return found[0]


def integer_sequences(path: Path) -> tuple[list[list[int]], int]:
    """Sequences with item ids renumbered 1..n (in order of first appearance)."""
    ids: dict[str, int] = {}
    sequences = [
        [ids.setdefault(item, len(ids) + 1) for item in items] for items in read_sequences(path).values()
    ]
    return sequences, len(ids)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--negatives", type=int, default=100, help="sampled protocol: negatives per target")
    p.add_argument("--epochs", type=int, default=200, help="at most; early stopping on validation")
    p.add_argument("--minutes", type=float, default=20.0, help="training time budget")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--loss", choices=["sampled", "full"], default="sampled")
    args = p.parse_args()
    started = time.time()
    path = sequence_file(args.data)
    sequences, num_items = integer_sequences(path)
    if args.quick:
        sequences = sequences[:3000]
    evaluated = [s for s in sequences if len(s) >= 3]
    train = [s[:-2] if len(s) >= 3 else s for s in sequences]
    print(
        f"{path.name}: {len(sequences)} users, {num_items} items, {sum(map(len, sequences))} actions; "
        f"{len(evaluated)} users evaluated"
    )
    config = SequentialConfig(
        max_length=50,
        dim=args.dim,
        dropout=args.dropout,
        loss=args.loss,
        epochs=2 if args.quick else args.epochs,
        patience=5,
    )
    model = NextItemModel(num_items, config, item_counts(train, num_items))
    valid = evaluated[:VALIDATION_USERS]
    valid_histories, valid_targets = [s[:-2] for s in valid], np.array([s[-2] for s in valid])
    deadline = time.time() + 60 * args.minutes

    def validate() -> float:
        if time.time() > deadline:
            model.stop_training = True
            print("time budget reached")
        return evaluate_next_item(model, valid_histories, valid_targets, "sampled", args.negatives)["ndcg@10"]

    trained_at = time.time()
    history = fit_next_item(model, train, validate)
    train_seconds = time.time() - trained_at
    examples = sum(len(s) - 1 for s in train if len(s) >= 2) * len(history.epoch)
    histories, targets = [s[:-1] for s in evaluated], np.array([s[-1] for s in evaluated])
    sampled = evaluate_next_item(model, histories, targets, "sampled", args.negatives)
    full = evaluate_next_item(model, histories, targets, "full")
    print(f"sampled ({args.negatives} negatives): {sampled}\nfull ranking: {full}")
    write_result(
        args.out,
        f"{path.name}: leave-one-out ({len(evaluated)} test users), {args.negatives} uniform sampled "
        "negatives not in the user's items (seed 0), and full ranking over all items with the "
        f"user's earlier items excluded; best of {len(history.epoch)} epochs by validation sampled NDCG@10"
        + (" (quick: first 3,000 users, 2 epochs)" if args.quick else ""),
        started,
        **{key: round(value, 4) for key, value in sampled.items() if key != "count"},
        full={key: round(value, 4) for key, value in full.items() if key != "count"},
        epochs=len(history.epoch),
        train_seconds=round(train_seconds, 1),
        examples_per_sec=round(examples / train_seconds, 1),
        config=vars(config),
    )


if __name__ == "__main__":
    main()
