"""The ``pretrain`` stage: the next-item model pre-trained on sequences and item attributes
(``pretrain:``; S3-Rec's objectives), in ``pretrain/``; ``train`` then fine-tunes from it."""

from tfshop.pipeline.registry import stage


@stage(
    "pretrain",
    "pre-train the next-item model on sequences and item attributes",
    output=lambda run: run.dir / "pretrain" / "model",
    default=False,
)
def pretrain(run) -> None:
    from tfshop.pipeline.next_item import pretrain_next_item

    pretrain_next_item(run)
