"""Does a next-item model's pre-trained item embedding help the multi-task model, on cold items?

``--data``: a shop directory (e.g. ``runs/demo/shop``). It is prepared twice: as the multi-task
dataset, and as the next-item dataset of each user's actions, on which a next-item model (64
wide) is pre-trained for ``--pretrain-epochs`` epochs on masked items and the items' attributes
(S3-Rec's objectives). Then, for 3 seeds, the multi-task model (every task of the shop,
bag-of-words text, 16-wide embeddings) is trained twice for ``--epochs`` epochs: with fresh item
id rows, and with ``model.item_embedding_from`` set to the pre-trained model. Test-split CTR AUC
over all impressions and over impressions of cold items (the items with the fewest training
impressions that together hold 10 % of the test impressions): mean and spread over seeds.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from common import parser, write_result

from tfshop.data.catalogue import read_catalogue
from tfshop.data.prepare import PrepareConfig, prepare
from tfshop.data.schema import Schema
from tfshop.data.sequences import load_sequences, prepare_sequences
from tfshop.evaluation.evaluate import collect
from tfshop.evaluation.metrics import binary_metrics
from tfshop.models.config import ModelConfig
from tfshop.models.pretrain import pretrain
from tfshop.models.sequential import NextItemModel, save_next_item
from tfshop.models.sequential_config import PretrainConfig, SequentialConfig
from tfshop.training.config import TrainConfig
from tfshop.training.targets import Targets
from tfshop.training.train import train

COLD_SHARE = 0.10


def cold_items(dataset: Path, item_ids: np.ndarray) -> set[str]:
    """The least-shown items (in training) that together hold ``COLD_SHARE`` of ``item_ids``."""
    catalogue = read_catalogue(dataset).sort_values("train_impressions", kind="stable")
    shown = {item: 0 for item in catalogue["item_id"]}
    for item, count in zip(*np.unique(item_ids, return_counts=True)):
        shown[item.decode()] = count
    cold, total = set(), 0
    for item in catalogue["item_id"]:
        if total >= COLD_SHARE * len(item_ids):
            break
        cold.add(item)
        total += shown[item]
    return cold


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--pretrain-epochs", type=int, default=50)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    started = time.time()
    seeds = [0] if args.quick else [0, 1, 2]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        dataset = prepare(args.data, scratch / "dataset", PrepareConfig())
        prepare_sequences(args.data, scratch / "sequences")
        data = load_sequences(scratch / "sequences")
        model = NextItemModel(
            data.num_items, SequentialConfig(dim=64, dropout=0.2, loss="full"), data.train_counts()
        )
        at = time.time()
        epochs = 1 if args.quick else args.pretrain_epochs
        pretrain(model, data.split("train")[0], data.attribute_matrix(), PretrainConfig(epochs=epochs))
        pretrain_seconds = time.time() - at
        save_next_item(model, scratch / "pretrain" / "model", data.item_ids)
        schema = Schema.load(dataset)
        results: dict[str, dict[str, list[float]]] = {}
        for seed in seeds:
            for variant, source in (("fresh", ""), ("pretrained", str(scratch / "pretrain"))):
                config = ModelConfig(item_embedding_from=source)
                trained = train(
                    dataset,
                    scratch / f"{variant}{seed}",
                    config,
                    TrainConfig(epochs=args.epochs, seed=seed, verbose=0),
                )
                rows = collect(trained, dataset, "test", Targets(dataset, schema, config), schema)
                shown = rows["w/ctr"] > 0
                y, p_, items = (
                    rows["y/ctr"][shown].ravel(),
                    rows["p/ctr"][shown].ravel(),
                    rows["item_id"][shown],
                )
                cold = np.isin(items.astype(str), list(cold_items(dataset, items)))
                scores = {
                    "ctr_auc": binary_metrics(y, p_)["auc"],
                    "cold_ctr_auc": binary_metrics(y[cold], p_[cold])["auc"],
                }
                for key, value in scores.items():
                    results.setdefault(variant, {}).setdefault(key, []).append(value)
                print(f"seed {seed} {variant}: {scores}")
    summary = {
        variant: {
            key: {"mean": round(float(np.mean(v)), 4), "std": round(float(np.std(v)), 4), "runs": v}
            for key, v in metrics.items()
        }
        for variant, metrics in results.items()
    }
    write_result(
        args.out,
        f"{args.data}: multi-task model (all tasks, bag-of-words text), fresh vs pre-trained item id rows "
        f"(next-item model pre-trained {epochs} epochs on the shop's action sequences and item attributes), "
        f"{args.epochs} epochs, seeds {seeds}; test CTR AUC on all impressions and on the cold items holding "
        f"{COLD_SHARE:.0%} of test impressions",
        started,
        ctr_auc=summary["pretrained"]["ctr_auc"]["mean"],
        cold_ctr_auc=summary["pretrained"]["cold_ctr_auc"]["mean"],
        pretrain_seconds=round(pretrain_seconds, 1),
        variants=summary,
    )


if __name__ == "__main__":
    main()
