"""The stages of a next-item run (a pipeline config with ``next_item:``).

``prepare`` writes each user's acted-on items in time order (:mod:`tfshop.data.sequences`);
``pretrain`` trains the model on S3-Rec's objectives (:mod:`tfshop.models.pretrain`); ``train``
fine-tunes from it (or trains from scratch when the stage list has no ``pretrain``), keeping the
best epoch by validation NDCG@10; ``evaluate`` ranks each test user's last item, sampled and
against the whole catalogue, next to popularity; ``export`` writes a SavedModel with
``recommend`` (:mod:`tfshop.export.next_item`); ``score`` and ``serve`` ask it for test users'
next items, in a fresh process and over REST and gRPC, and check the answers against the
trained model's.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from tfshop.errors import TfshopError

log = logging.getLogger(__name__)

EVAL_KS = (5, 10, 20)


def prepare(run) -> None:
    from tfshop.data.sequences import prepare_sequences

    report = prepare_sequences(run.shop, run.dataset, overwrite=True)
    print(
        f"next-item dataset {run.dataset}: {report['users']} users, {report['items']} items, "
        f"{report['actions']} actions, {report['attributes']} attributes; skipped: "
        f"{report['users_skipped_single_action']} users with one action, "
        f"{report['skipped_missing_user_item_or_time']} rows without user, item or time"
    )


def _data_and_model(run):
    from tfshop.data.sequences import load_sequences
    from tfshop.models.sequential import NextItemModel

    data = load_sequences(run.dataset)
    return data, NextItemModel(data.num_items, run.config.next_item, data.train_counts())


def pretrain_next_item(run) -> None:
    import tf_keras as keras

    from tfshop.models.pretrain import pretrain
    from tfshop.models.sequential import save_next_item

    data, model = _data_and_model(run)
    out = run.dir / "pretrain"
    print(f"pre-training on {data.num_items} items' sequences and {len(data.attribute_names)} attributes")
    history = pretrain(
        model,
        data.split("train")[0],
        data.attribute_matrix(),
        run.config.pretrain,
        callbacks=[keras.callbacks.TensorBoard(str(out / "logs"), write_graph=False)],
    )
    save_next_item(model, out / "model", data.item_ids)
    (out / "history.json").write_text(json.dumps(history.history, indent=1) + "\n")


def train(run) -> None:
    import tf_keras as keras

    from tfshop.models.sequential import evaluate_next_item, fit_next_item, restore_weights, save_next_item

    data, model = _data_and_model(run)
    config = run.config.next_item
    if "pretrain" in run.config.stages:
        start = run.dir / "pretrain" / "model"
        restore_weights(model, start)
        print(f"fine-tuning from {start}")
    histories, targets = data.split("valid")
    users = config.validation_users or len(targets)
    histories, targets = histories[:users], targets[:users]

    def validate() -> float:
        metrics = evaluate_next_item(
            model, histories, targets, config.validation_protocol, config.eval_negatives
        )
        return metrics["ndcg@10"]

    logs = keras.callbacks.TensorBoard(str(run.train_dir / "logs"), write_graph=False)
    history = fit_next_item(model, data.split("train")[0], validate, seed=0, callbacks=[logs])
    save_next_item(model, run.train_dir / "model", data.item_ids)
    run.train_dir.mkdir(parents=True, exist_ok=True)
    (run.train_dir / "history.json").write_text(json.dumps(history.history, indent=1) + "\n")


def load_trained(run):
    """The run's sequences and its trained next-item model."""
    from tfshop.data.sequences import load_sequences
    from tfshop.models.sequential import load_next_item

    data = load_sequences(run.dataset)
    return data, load_next_item(run.train_dir / "model", data.train_counts())


def evaluate(run) -> None:
    from tfshop.models.sequential import evaluate_next_item, popularity_scores

    data, model = load_trained(run)
    negatives = run.config.next_item.eval_negatives
    histories, targets = data.split("test")
    rows, report = [], {"users": len(targets), "items": data.num_items, "negatives": negatives}
    for name, scorer in (("model", model), ("popularity", popularity_scores(data.train_counts()))):
        for protocol in ("sampled", "full"):
            metrics = evaluate_next_item(scorer, histories, targets, protocol, negatives, ks=EVAL_KS)
            report[f"{name}_{protocol}"] = metrics
            rows.append(
                f"| {name} | {protocol} | "
                + " | ".join(f"{metrics[f'{m}@{k}']:.4f}" for k in (10, 20) for m in ("hr", "ndcg"))
                + f" | {metrics['mrr']:.4f} |"
            )
    run.eval_dir.mkdir(parents=True, exist_ok=True)
    (run.eval_dir / "eval_report.json").write_text(json.dumps(report, indent=1) + "\n")
    table = [
        f"Next item of {len(targets)} test users: `sampled` ranks it among {negatives} items the user "
        f"never acted on, `full` among all {data.num_items} items (the user's earlier items left out).",
        "",
        "| scorer | protocol | HR@10 | NDCG@10 | HR@20 | NDCG@20 | MRR |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
    (run.eval_dir / "eval_report.md").write_text("\n".join(table) + "\n")


def export(run) -> Path:
    from tfshop.export.next_item import export_next_item

    data, model = load_trained(run)
    config = run.config.export
    path = export_next_item(
        model,
        data.item_ids,
        config.base,
        config.name,
        warmup=_requests(data, 8),
        k=config.recommend_k,
        allow_repeats=config.allow_repeats,
    )
    (run.dir / "export.json").write_text(json.dumps({"path": str(path)}) + "\n")
    print(f"exported {path}")
    return path


def _requests(data, rows: int) -> dict[str, np.ndarray]:
    """The first test users' histories (right-padded strings), ``k`` and candidate items."""
    histories, targets = data.split("test")
    histories, targets = histories[:rows], targets[:rows]
    width = max(map(len, histories))
    names = np.array([""] + data.item_ids, dtype=object)
    padded = np.array([[names[i] for i in h] + [""] * (width - len(h)) for h in histories], dtype=object)
    candidates = np.stack([names[targets], names[(targets % data.num_items) + 1]], axis=1)
    return {
        "history": padded.astype(bytes),
        "k": np.full(len(histories), 5, np.int32),
        "items": candidates.astype(bytes),
    }


def _expected(run, data, model, requests) -> dict[str, dict[str, np.ndarray]]:
    """What each signature of the run's export should answer, from the trained model in memory."""
    from tfshop.export.next_item import RecommendModule

    config = run.config.export
    module = RecommendModule(model, data.item_ids, config.recommend_k, config.allow_repeats)
    history = requests["history"]
    answers = {
        "recommend_k": module.recommend_k(history, requests["k"]),
        "serving_default": module.score(history, requests["items"]),
    }
    return {name: {k: v.numpy() for k, v in answer.items()} for name, answer in answers.items()}


def _signature_inputs(requests: dict, signature: str) -> dict:
    names = {"recommend_k": ("history", "k"), "serving_default": ("history", "items")}[signature]
    return {name: requests[name] for name in names}


def check_answer(answer: dict, expected: dict, source: str) -> None:
    """Served item ids must equal the trained model's and scores agree to 1e-4 (relative)."""
    for key, value in expected.items():
        got = np.asarray(answer[key])
        if value.dtype.kind in "OSU":
            same = np.array_equal(_text(got), _text(value))
        else:
            same = got.shape == value.shape and np.allclose(got, value, rtol=1e-4, atol=1e-5)
        if not same:
            raise TfshopError(f"{source}: served {key} differ from the trained model's")


def _text(values: np.ndarray) -> np.ndarray:
    return np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[object])(values)


def _export_and_expected(run, rows: int):
    """The run's export, requests for ``rows`` test users, and each signature's expected answer."""
    data, model = load_trained(run)
    export_dir = Path(json.loads((run.dir / "export.json").read_text())["path"])
    requests = _requests(data, rows)
    return export_dir, requests, _expected(run, data, model, requests)


def score(run, rows: int = 3) -> None:
    from tfshop.export.verify import score_in_fresh_process

    export_dir, requests, expected = _export_and_expected(run, rows)
    for signature, wanted in expected.items():
        answer = score_in_fresh_process(
            export_dir, _signature_inputs(requests, signature), signature=signature
        )
        check_answer(answer, wanted, f"{export_dir} ({signature})")
    print(f"\nasked {export_dir} for the next items of {rows} test users in a fresh TensorFlow process:")
    _print_recommendations(requests, expected["recommend_k"])


def serve(run, rows: int = 3) -> None:
    from tfshop.serving.client import connect
    from tfshop.serving.process import server_process

    export_dir, requests, expected = _export_and_expected(run, rows)
    name, version = export_dir.parent.name, int(export_dir.name)
    with server_process(export_dir.parent, name, run.dir / "serve.log") as (rest_url, grpc_url):
        print(f"\nserving {export_dir.parent} as {name!r}: REST {rest_url}, gRPC {grpc_url}")
        for url in (rest_url, grpc_url):
            with connect(url, name) as client:
                client.wait_until_available(version)
                for signature, wanted in expected.items():
                    inputs = _signature_inputs(requests, signature)
                    answer = client.predict(inputs, signature_name=signature, version=version)
                    check_answer(answer, wanted, f"{url.split(':')[0]} {signature}")
    print(f"recommend over REST and gRPC (version {version}) answered as the trained model:")
    _print_recommendations(requests, expected["recommend_k"])
    print("server stopped; start it yourself with:")
    print(f"  tfshop serve --model_name {name} --model_base_path {export_dir.parent} --rest_api_port 8501")
    print(
        f'  curl -d \'{{"signature_name": "recommend", "instances": [{{"history": ["..."]}}]}}\' '
        f"localhost:8501/v1/models/{name}:predict"
    )


def _print_recommendations(requests: dict, answer: dict) -> None:
    for history, items, scores in zip(requests["history"], answer["item_ids"], answer["scores"]):
        recent = [h.decode() for h in history if h][-3:]
        shown = ", ".join(f"{i.decode()} ({s:.2f})" for i, s in zip(items, scores))
        print(f"  after … {', '.join(recent)}: {shown}")
