"""The item embedding in TensorBoard's projector, labelled with item ids and titles."""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
import tf_keras as keras
from tensorboard.plugins import projector

from tfshop.data.catalogue import read_catalogue
from tfshop.data.schema import Schema


def write_item_projector(model: keras.Model, data_dir: Path, schema: Schema, logs: Path) -> bool:
    """Checkpoint of the item embedding + ``item_metadata.tsv`` + projector config in ``logs``."""
    item, title = schema.with_role("item_id"), schema.name_of("item_title")
    layer = f"{Path(item.vocab).stem}_embedding" if item is not None and item.vocab else None
    if layer not in [layer.name for layer in model.layers]:
        return False
    ids = (data_dir / item.vocab).read_text(encoding="utf-8").splitlines()
    catalogue = read_catalogue(data_dir)
    titles = (
        catalogue[title].str.replace(r"\s+", " ", regex=True).tolist()
        if (catalogue is not None and title in catalogue)
        else [""] * len(ids)
    )
    rows = (
        [("[padding]", "")]
        + [(f"[oov {i}]", "") for i in range(item.num_oov_buckets)]
        + list(zip(ids, titles))
    )
    logs.mkdir(parents=True, exist_ok=True)
    (logs / "item_metadata.tsv").write_text("item_id\ttitle\n" + "".join(f"{i}\t{t}\n" for i, t in rows))
    weights = tf.Variable(model.get_layer(layer).embeddings)
    tf.train.Checkpoint(item_embedding=weights).save(str(logs / "item_embedding.ckpt"))
    config = projector.ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = "item_embedding/.ATTRIBUTES/VARIABLE_VALUE"
    embedding.metadata_path = "item_metadata.tsv"
    projector.visualize_embeddings(str(logs), config)
    return True
