import numpy as np
import pytest
import tf_keras as keras

from tests.models.test_sequential import cyclic_sequences
from tfshop.models.pretrain import masked_batches, pretrain
from tfshop.models.sequential import NextItemModel, item_counts
from tfshop.models.sequential_config import PretrainConfig, SequentialConfig

ITEMS = 60


def strided_sequences(users: int) -> list[list[int]]:
    return cyclic_sequences(users, ITEMS)


def attribute_matrix() -> np.ndarray:
    """Item i has attributes 1 + i % 5 and 6 + i % 3; item 7 has none."""
    ids = np.arange(ITEMS + 1)
    matrix = np.stack([1 + ids % 5, 6 + ids % 3], axis=1).astype(np.int32)
    matrix[0] = matrix[7] = 0
    return matrix


def test_each_objective_learns_beyond_chance():
    """Strided sequences: a hidden item follows from its neighbours, an item's attributes from
    the item. Chance: MIP log 60 = 4.09 nats; AAP and MAP 4.41 nats, the entropy of the
    attributes' base rates (1/5 for five of them, 1/3 for three)."""
    keras.utils.set_random_seed(0)
    sequences = strided_sequences(600)
    config = SequentialConfig(max_length=12, dim=16, loss="full", dropout=0.0)
    model = NextItemModel(ITEMS, config, item_counts(sequences, ITEMS))
    pretrain_config = PretrainConfig(epochs=16, batch_size=32, learning_rate=1e-2)
    history = pretrain(model, sequences, attribute_matrix(), pretrain_config, verbose=0).history
    assert all(np.isfinite(history["loss"]))
    assert history["mip"][-1] < 0.75 * np.log(ITEMS)
    assert history["aap"][-1] < 0.85 * 4.41
    assert history["map"][-1] < 0.95 * 4.41


def test_pretrained_weights_are_what_fine_tuning_starts_from(tmp_path):
    from tfshop.models.sequential import load_next_item, save_next_item

    sequences = strided_sequences(100)
    counts = item_counts(sequences, ITEMS)
    model = NextItemModel(ITEMS, SequentialConfig(max_length=12, dim=16), counts)
    pretrain(model, sequences, attribute_matrix(), PretrainConfig(epochs=1), verbose=0)
    save_next_item(model, tmp_path / "model", [f"i{k}" for k in range(1, ITEMS + 1)])
    again = load_next_item(tmp_path / "model", counts)
    assert len(again.weights) == len(model.weights)
    for mine, theirs in zip(model.weights, again.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_masked_batches_hide_a_share_and_always_the_last_item():
    sequences = strided_sequences(400)
    model = NextItemModel(ITEMS, SequentialConfig(max_length=8, dim=8), item_counts(sequences, ITEMS))
    config = PretrainConfig(batch_size=100, mask_share=0.3)
    batches = list(masked_batches(sequences, model, config, np.random.default_rng(0)))
    assert sum(len(items) for _, items in batches) == 400
    hidden = shown = 0
    for masked, items in batches:
        assert masked.shape == items.shape and masked.shape[1] <= 8
        assert (masked[:, -1] == model.mask_id).all()  # the newest item is always predicted
        body = items[:, :-1] > 0
        hidden += ((masked[:, :-1] == model.mask_id) & body).sum()
        shown += ((masked[:, :-1] == items[:, :-1]) & body).sum()
        assert ((masked == items) | (masked == model.mask_id)).all()
    assert hidden / (hidden + shown) == pytest.approx(0.3, abs=0.05)


def test_bad_pretraining_configs_are_clear_errors():
    with pytest.raises(ValueError, match="mask_share"):
        PretrainConfig(mask_share=1.0).validate()
    with pytest.raises(ValueError, match="one of them positive"):
        PretrainConfig(mip_weight=0, aap_weight=0, map_weight=0).validate()
