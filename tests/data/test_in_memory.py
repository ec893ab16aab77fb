"""A split parsed once into memory: every row once per pass, a new order each pass."""

from tfshop.data.in_memory import InMemorySplit, estimated_bytes
from tfshop.data.input_config import InputConfig
from tfshop.data.pipeline import make_dataset
from tfshop.data.schema import Schema

NAMES = {"item_id", "price", "hist_item_ids", "click"}


def rows(dataset) -> list[tuple]:
    return [
        (item, price, tuple(history), click)
        for features, labels in dataset
        for item, price, history, click in zip(
            features["item_id"].numpy(),
            features["price"].numpy(),
            features["hist_item_ids"].numpy(),
            labels["click"].numpy(),
        )
    ]


def test_each_pass_holds_every_row_once_in_a_new_order(small_dataset):
    schema = Schema.load(small_dataset)
    split = InMemorySplit.read(small_dataset, "valid", schema, NAMES)
    streamed = rows(make_dataset(small_dataset, "valid", InputConfig(batch_size=500, deterministic=True)))
    assert split.rows == len(streamed)
    in_order = split.batches(100, shuffle=False, seed=0, repeat=False)
    features, labels = next(iter(in_order))
    assert set(features) == NAMES - {"click"} and set(labels) == {"click"}  # only the columns asked for
    assert rows(in_order) == streamed
    shuffled = split.batches(100, shuffle=True, seed=0, repeat=False)
    first, second = rows(shuffled), rows(shuffled)
    assert first != streamed and first != second  # each pass draws a new permutation
    assert sorted(first) == sorted(second) == sorted(streamed)
    again = rows(InMemorySplit.read(small_dataset, "valid", schema, NAMES).batches(100, True, 0, False))
    assert again == first  # the seed fixes the sequence of permutations
    assert int(in_order.cardinality()) == -(-split.rows // 100)


def test_repeated_passes_never_end_and_stay_permutations(small_dataset):
    schema = Schema.load(small_dataset)
    split = InMemorySplit.read(small_dataset, "valid", schema, NAMES)
    batch = 64
    steps = -(-split.rows // batch)
    stream = split.batches(batch, shuffle=True, seed=3, repeat=True).take(2 * steps)
    items = [x for features, _ in stream for x in features["item_id"].numpy()]
    one, two = items[: split.rows], items[split.rows :]
    assert sorted(one) == sorted(two) and one != two


def test_memory_estimate_is_close_to_the_parsed_columns(small_dataset):
    schema = Schema.load(small_dataset)
    split = InMemorySplit.read(small_dataset, "valid", schema, NAMES)
    estimate = estimated_bytes(small_dataset, "valid", schema, NAMES, split.rows)
    actual = 0
    for column in {**split.features, **split.labels}.values():
        values = column.numpy()
        strings = values.dtype == object
        actual += sum(len(v) for v in values.ravel()) + 24 * values.size if strings else values.nbytes
    assert 0.8 * actual < estimate < 1.25 * actual
