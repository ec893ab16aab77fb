"""Encode speed of the pretrained sentence encoder and the distilled student, in sentences per second.

``--data`` is a Hugging Face style BERT directory, or ``default`` for all-MiniLM-L6-v2. Each
sentence is exactly ``length`` tokens ([CLS] and [SEP] included); for each length (16, 32,
128) and batch size (1, 64) the compiled model (tokenisation included) encodes batches back to
back for a fixed time after a warm-up, five times; the median rate is reported. The student
(``tfshop.training.distill.build_student``, default ``StudentConfig``) is timed untrained:
its speed does not depend on its weights.
"""

from __future__ import annotations

import time
from pathlib import Path

import tensorflow as tf
from common import median, parser, write_result

from tfshop.layers.text import sentence_encoder
from tfshop.training.distill import StudentConfig, build_student

LENGTHS = (16, 32, 128)
BATCHES = (1, 64)


def sentences_per_second(encode, batch: tf.Tensor, seconds: float) -> float:
    encode(batch)
    started, calls = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        encode(batch)
        calls += 1
    return calls * int(batch.shape[0]) / (time.perf_counter() - started)


def main() -> None:
    args = parser(__doc__.splitlines()[0]).parse_args()
    started = time.time()
    folder = None if str(args.data) == "default" else Path(args.data)
    seconds, repeats = (0.5, 3) if args.quick else (2.0, 5)
    teacher = sentence_encoder(folder, max_length=max(LENGTHS))
    models = {"encoder": teacher, "student": build_student(teacher.output_shape[-1], StudentConfig())}
    rates: dict[str, dict[str, float]] = {}
    for name, model in models.items():
        encode = tf.function(lambda texts, model=model: model(texts, training=False))
        for length in LENGTHS:
            sentence = " ".join(["shop"] * (length - 2))  # "shop" is one WordPiece token
            for size in BATCHES:
                batch = tf.constant([sentence] * size)
                rate = median([sentences_per_second(encode, batch, seconds) for _ in range(repeats)])
                rates.setdefault(name, {})[f"length_{length}/batch_{size}"] = round(rate, 1)
                print(f"{name:>8} length {length:3d} batch {size:2d}: {rate:10,.1f} sentences/s")
    speedup = {k: round(rates["student"][k] / rates["encoder"][k], 1) for k in rates["encoder"]}
    write_result(
        args.out,
        f"sentences of exactly {list(LENGTHS)} tokens, batches of {list(BATCHES)}, tokenisation included; "
        f"median of {repeats} runs of {seconds:g}s each",
        started,
        sentences_per_sec=rates["encoder"]["length_32/batch_64"],
        student_speedup=speedup,
        runs=rates,
    )


if __name__ == "__main__":
    main()
