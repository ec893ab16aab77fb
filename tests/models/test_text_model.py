"""The multi-task model with a frozen pretrained text encoder in its text slots.

The encoder is the small random BERT fixture in Hugging Face layout: the code path is the one
all-MiniLM-L6-v2 takes (the default encoder's own loading and parity are tested in
tests/layers/test_text_encoder.py), at a fraction of the cost of caching every text.
"""

import numpy as np
import tensorflow as tf

from tfshop.data.input_config import InputConfig
from tfshop.data.pipeline import make_dataset
from tfshop.data.schema import Schema
from tfshop.export.saved_model import export
from tfshop.export.verify import score_in_fresh_process
from tfshop.layers.text import embed_texts
from tfshop.models.config import ModelConfig
from tfshop.models.saved import load_keras
from tfshop.training.config import TrainConfig
from tfshop.training.train import train


def test_frozen_encoder_trains_reloads_and_serves_raw_text(small_dataset, tiny_bert, tmp_path):
    config = ModelConfig.of(
        block="shared_bottom", tasks=["ctr", "relevance"], text_encoder=str(tiny_bert), text_max_length=32
    )
    model = train(
        small_dataset,
        tmp_path / "run",
        config,
        TrainConfig(epochs=1, batch_size=256, steps_per_epoch=5, verbose=0),
    )
    encoder = model.get_layer("sentence_encoder")
    assert not encoder.trainable and not any("bert" in w.name for w in model.trainable_weights)
    assert "query_title_semantic_match" in [layer.name for layer in model.layers]

    features, _ = next(
        iter(make_dataset(small_dataset, "test", InputConfig(batch_size=8, deterministic=True)))
    )
    inputs = {name: features[name].numpy() for name in model.input_names}
    inputs["title"] = np.array([b"a title no training row has", *inputs["title"][1:]], dtype=object)
    cached = encoder(tf.constant(inputs["title"])).numpy()
    titles = [t.decode() for t in inputs["title"]]
    np.testing.assert_allclose(
        cached, embed_texts(titles, tiny_bert, max_length=32), atol=1e-5
    )  # hits and a miss

    expected = {k: v.numpy() for k, v in model(inputs).items()}
    reloaded = load_keras(tmp_path / "run" / "model")
    for name, value in reloaded(inputs).items():
        np.testing.assert_allclose(value.numpy(), expected[name], atol=1e-5)
    path = export(reloaded, Schema.load(small_dataset), tmp_path / "saved_models", "shop")
    served = score_in_fresh_process(path, inputs)
    for name in expected:
        np.testing.assert_allclose(served[name], expected[name], atol=1e-5)
