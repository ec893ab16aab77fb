"""The ``score`` stage: the export asked, in a fresh TensorFlow process, for test rows' scores
(checked against the trained model) and, with a retrieval task, for test users' items."""

from __future__ import annotations

import json
from pathlib import Path

from tfshop.pipeline.registry import stage


@stage("score", "score test rows with the export in a fresh process")
def score(run) -> None:
    if run.config.next_item is not None:
        from tfshop.pipeline import next_item

        next_item.score(run)
        return
    from tfshop.pipeline.stages.export import retrieval_inputs

    score_real_requests(run)
    towers = retrieval_inputs(run.config, run.dataset)
    if towers is not None:
        retrieve_real_requests(run, towers[0])


def score_real_requests(run, rows: int = 5) -> None:
    """Scores test rows with the export in a fresh process and checks the in-memory scores."""
    from tfshop.export.verify import score_in_fresh_process
    from tfshop.pipeline.checks import check_same_scores, exported_and_expected, row_labels

    export, inputs, expected = exported_and_expected(run, rows)
    labels = row_labels(run, inputs)
    served = score_in_fresh_process(export, inputs)
    worst = check_same_scores(served, expected, str(export))
    print(
        f"\nscored {rows} test rows with {export} in a fresh TensorFlow process "
        f"(max difference to the in-memory model {worst:.1e}):"
    )
    names = [k for k in sorted(served) if served[k].shape[-1] == 1]
    print(f"  {'item':>8}" + "".join(f"{n:>10}" for n in names))
    for i in range(rows):
        print(f"  {labels[i]:>8}" + "".join(f"{served[n][i, 0]:>10.4f}" for n in names))


def retrieve_real_requests(run, query_names: list[str], rows: int = 3, shown: int = 5) -> None:
    """Asks the export's ``retrieve`` signature, in a fresh process, for the items of test users."""
    from tfshop.export.verify import score_in_fresh_process
    from tfshop.pipeline.checks import sample_inputs

    export = Path(json.loads((run.dir / "export.json").read_text())["path"])
    inputs = sample_inputs(run.dataset, query_names, "test", rows)
    answer = score_in_fresh_process(export, inputs, signature="retrieve")
    print(
        f"\nretrieve: top {answer['item_ids'].shape[1]} of the catalogue (first {shown}) for {rows} test rows"
    )
    for i in range(rows):
        items = ", ".join(
            f"{item.decode()} ({score:.2f})"
            for item, score in zip(answer["item_ids"][i][:shown], answer["scores"][i])
        )
        print(f"  row {i}: {items}")
