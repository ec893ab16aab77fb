"""Distilling the pretrained encoder into the bag-of-words student, on the synthetic shop's text."""

import numpy as np
import pandas as pd
import pytest

from tfshop.layers.text import embed_texts
from tfshop.training.distill import StudentConfig, build_student, distill


def test_student_reproduces_the_teacher_on_unseen_titles(small_shop):
    items = pd.read_parquet(small_shop / "items.parquet")
    texts = sorted(set(items["title"]) | set(items["description"]))
    rng = np.random.default_rng(0)
    rng.shuffle(texts)
    train, held_out = texts[: int(len(texts) * 0.8)], texts[int(len(texts) * 0.8) :][:200]
    teacher = embed_texts(train + held_out)
    student = distill(train, teacher[: len(train)], StudentConfig(epochs=15, num_bins=20_000, batch_size=64))
    predicted = student.predict(np.asarray(held_out, dtype=object), verbose=0)
    cosine = np.sum(predicted * teacher[len(train) :], axis=1)
    untrained = build_student(teacher.shape[1], StudentConfig(num_bins=20_000))
    before = np.sum(
        untrained.predict(np.asarray(held_out, dtype=object), verbose=0) * teacher[len(train) :], axis=1
    )
    assert cosine.mean() > 0.9 and cosine.mean() > before.mean() + 0.5, (cosine.mean(), before.mean())
    np.testing.assert_allclose(np.linalg.norm(predicted, axis=1), 1.0, atol=1e-5)


def test_distill_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="3 texts for 2 teacher vectors"):
        distill(["a", "b", "c"], np.zeros((2, 4), np.float32))
