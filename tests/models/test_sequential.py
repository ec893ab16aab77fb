import numpy as np
import pytest
import tensorflow as tf

from tfshop.layers.retrieval import CandidateSampler, retrieval_task, sampled_softmax_loss
from tfshop.layers.sequence import CausalSequenceEncoder
from tfshop.models.sequential import (
    NextItemModel,
    SequentialConfig,
    evaluate_next_item,
    fit_next_item,
    item_counts,
    left_padded,
    score_next,
    training_arrays,
)


def softmax_loss(logits: np.ndarray, label: int) -> float:
    kept = logits[np.isfinite(logits)]
    return float(-logits[label] + np.log(np.exp(kept).sum()))


def test_logq_correction_and_accidental_hits_match_a_hand_computed_loss():
    """Positives [item 1, item 1, item 2] with item 1 three times as frequent: each row's
    softmax runs over the batch's candidates with scores minus log(sampling probability),
    and the second copy of item 1 is not a negative for the rows whose positive is item 1."""
    table = np.array([[0.0, 0.0], [1.0, 0.5], [-0.5, 1.0]], np.float32)
    queries = np.array([[2.0, 1.0], [0.5, -1.0], [0.0, 1.0]], np.float32)
    positives = [1, 1, 2]
    sampler = CandidateSampler(np.array([0.0, 3.0, 1.0]))
    ids, probabilities = sampler(tf.constant(positives))
    np.testing.assert_allclose(probabilities.numpy(), [0.75, 0.75, 0.25], rtol=1e-6)  # 3 · p / 3
    loss = sampled_softmax_loss(
        retrieval_task(), tf.constant(queries), tf.constant(positives), lambda i: tf.gather(table, i), sampler
    )
    expected = []
    for row in range(3):
        logits = table[positives] @ queries[row] - np.log([0.75, 0.75, 0.25])  # logQ: minus log p
        for column in range(3):
            if column != row and positives[column] == positives[row]:
                logits[column] = -np.inf  # accidental hit
        expected.append(softmax_loss(logits, row))
    assert float(loss) == pytest.approx(np.mean(expected), rel=1e-5)
    uncorrected = sampled_softmax_loss(
        retrieval_task(),
        tf.constant(queries),
        tf.constant(positives),
        lambda i: tf.gather(table, i),
        sampler,
        False,
    )
    assert float(uncorrected) != pytest.approx(float(loss), rel=1e-3)


def test_extra_uniform_negatives_enter_the_sampling_probability():
    tf.random.set_seed(0)
    counts = np.array([0.0, 3.0, 1.0, 0.0])
    ids, probabilities = CandidateSampler(counts, extra=2)(tf.constant([1, 2]))
    popularity = counts / counts.sum()
    assert ids.numpy()[:2].tolist() == [1, 2] and set(ids.numpy()[2:]) <= {1, 2, 3}
    # expected count of each candidate: 2 in-batch draws by popularity + 2 uniform of 3 items
    expected = (2 * popularity[ids.numpy()] + 2 / 3) / 4
    np.testing.assert_allclose(probabilities.numpy(), expected, rtol=1e-6)


def test_causal_encoder_ignores_future_events_padding_and_overflow():
    tf.random.set_seed(1)
    encoder = CausalSequenceEncoder(max_length=4, num_blocks=2, num_heads=2, dropout=0.0)
    x = tf.random.normal((1, 4, 8))
    mask = tf.constant([[True] * 4])
    full = encoder([x, mask])
    changed = encoder([tf.concat([x[:, :3], tf.random.normal((1, 1, 8))], axis=1), mask])
    np.testing.assert_allclose(full[:, :3], changed[:, :3], atol=1e-5)  # position 3 is the future
    assert not np.allclose(full[:, 3], changed[:, 3])
    short = encoder([x[:, 2:], mask[:, 2:]])
    padded = encoder(
        [tf.concat([tf.zeros((1, 2, 8)), x[:, 2:]], 1), tf.constant([[False, False, True, True]])]
    )
    np.testing.assert_allclose(short[:, -1], padded[:, -1], atol=1e-5)
    np.testing.assert_allclose(padded[:, :2], 0.0)
    longer = encoder([tf.concat([tf.random.normal((1, 3, 8)), x], 1), tf.constant([[True] * 7])])
    np.testing.assert_allclose(longer[:, -1], full[:, -1], atol=1e-5)  # only the last 4 count


def test_training_arrays_shift_by_one_and_keep_the_most_recent():
    inputs, targets = training_arrays([[1, 2, 3, 4, 5, 6], [7, 8], [9]], 3)
    assert inputs.tolist() == [[3, 4, 5], [0, 0, 7]]
    assert targets.tolist() == [[4, 5, 6], [0, 0, 8]]
    assert left_padded([[]], 2).tolist() == [[0, 0]]


def cyclic_sequences(users: int, items: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(users):
        start, step = rng.integers(0, items), rng.integers(1, 4)
        out.append([int((start + step * k) % items) + 1 for k in range(rng.integers(5, 15))])
    return out


@pytest.mark.parametrize("loss", ["sampled", "full"])
def test_next_item_model_learns_a_sequential_pattern(loss):
    """Items follow each other by a user's own stride: held-out next items rank near the top,
    far above chance (HR@10 of 10/100 for a random model)."""
    items = 100
    sequences = cyclic_sequences(1500, items)
    train = [s[:-1] for s in sequences]
    config = SequentialConfig(max_length=10, dim=32, epochs=6, loss=loss, extra_negatives=32, dropout=0.1)
    model = NextItemModel(items, config, item_counts(train, items))
    fit_next_item(model, train)
    targets = np.array([s[-1] for s in sequences])
    sampled = evaluate_next_item(model, train, targets, "sampled", negatives=50)
    full = evaluate_next_item(model, train, targets, "full")
    assert sampled["hr@10"] > 0.9
    assert full["hr@10"] > 0.6 and full["ndcg@10"] > 0.3


def test_bad_sequential_configs_are_clear_errors():
    with pytest.raises(ValueError, match="loss"):
        SequentialConfig(loss="bpr").validate()
    with pytest.raises(ValueError, match="temperature"):
        SequentialConfig(temperature=0).validate()
    with pytest.raises(ValueError, match="no positives"):
        CandidateSampler(np.zeros(5))


def test_cold_start_scores_by_popularity_and_unknown_ids_are_dropped(caplog):
    items = 20
    sequences = cyclic_sequences(200, items)
    counts = item_counts(sequences, items)
    model = NextItemModel(items, SequentialConfig(max_length=5, dim=8), counts)
    scores = score_next(model, [[], [3, 4], [3, 999, 4, 0]])
    assert np.argmax(scores[0]) + 1 == np.argmax(counts)
    np.testing.assert_allclose(scores[0], np.log1p(counts[1:]))
    np.testing.assert_allclose(scores[1], scores[2], atol=1e-5)
    assert "dropped 2 unknown item ids" in caplog.text
