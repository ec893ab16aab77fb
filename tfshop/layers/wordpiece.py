"""BERT's WordPiece tokenisation inside the graph: raw strings in, model inputs out.

It follows the original (Hugging Face ``BertTokenizer``) step by step, so that a checkpoint
sees the token ids it was trained with: drop control characters and map whitespace to spaces;
lower-case, decompose (NFD) and drop accents when the checkpoint is uncased; split on
whitespace, around punctuation and around each CJK character; a word of more than 100
characters becomes ``[UNK]``; then greedy longest-match WordPiece, a word that cannot be
covered becoming ``[UNK]``. The vocabulary is held in the graph, so a SavedModel needs no file.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf
import tensorflow_text as tf_text
import tf_keras as keras

_PUNCTUATION = r"[!-/]|[:-@]|[\[-`]|[{-~]|\p{P}"
_CJK = (
    r"[\x{4E00}-\x{9FFF}]|[\x{3400}-\x{4DBF}]|[\x{20000}-\x{2A6DF}]|[\x{2A700}-\x{2B73F}]"
    r"|[\x{2B740}-\x{2B81F}]|[\x{2B820}-\x{2CEAF}]|[\x{F900}-\x{FAFF}]|[\x{2F800}-\x{2FA1F}]"
)
_KEPT_DELIMITERS = f"{_PUNCTUATION}|{_CJK}"
_MAX_WORD_CHARS = 100


def read_vocabulary(path: str | Path) -> list[str]:
    """A ``vocab.txt``: one token a line, the line number its id."""
    return Path(path).read_text(encoding="utf-8").removesuffix("\n").split("\n")


@keras.utils.register_keras_serializable(package="tfshop")
class WordPieceTokenizer(keras.layers.Layer):
    """Strings ``(batch,)`` → ``input_ids``, ``attention_mask``, ``token_type_ids`` ``(batch, max_length)``.

    Called on a pair ``(first, second)`` it encodes ``[CLS] first [SEP] second [SEP]`` for
    cross-encoding, trimming the longer segment first (as ``truncation="longest_first"``).
    With ``fixed_length=False`` a batch is padded only to its longest row (at most
    ``max_length``), which saves the encoder the work on padding.
    """

    def __init__(
        self,
        vocabulary: list[str],
        lower_case: bool = True,
        max_length: int = 128,
        fixed_length: bool = True,
        **kwargs,
    ):
        kwargs["trainable"] = False
        super().__init__(**kwargs)
        if max_length < 3:
            raise ValueError(f"max_length must be at least 3 ([CLS] x [SEP]), not {max_length}")
        missing = [t for t in ("[CLS]", "[SEP]", "[UNK]", "[PAD]") if t not in vocabulary]
        if missing:
            raise ValueError(f"the vocabulary lacks {missing}")
        self.vocabulary, self.lower_case, self.max_length = list(vocabulary), lower_case, max_length
        self.fixed_length = fixed_length
        self.cls_id, self.sep_id = vocabulary.index("[CLS]"), vocabulary.index("[SEP]")
        self.pad_id = vocabulary.index("[PAD]")
        with tf.init_scope():
            table = tf.lookup.StaticVocabularyTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(self.vocabulary), tf.range(len(vocabulary), dtype=tf.int64)
                ),
                num_oov_buckets=1,
            )
        self.table = table
        self.wordpiece = tf_text.WordpieceTokenizer(
            table, max_bytes_per_word=4 * _MAX_WORD_CHARS, token_out_type=tf.int64, unknown_token="[UNK]"
        )

    def words(self, text: tf.Tensor) -> tf.RaggedTensor:
        """The basic tokenizer's words, ``(batch, None)``."""
        text = tf.strings.regex_replace(text, r"[\t\n\r]|\p{Zs}", " ")
        text = tf.strings.regex_replace(text, r"\p{C}|\x{FFFD}", "")
        if self.lower_case:
            text = tf.strings.lower(text, encoding="utf-8")
            text = tf.strings.regex_replace(tf_text.normalize_utf8(text, "NFD"), r"\p{Mn}", "")
        words = tf_text.regex_split(text, rf"\s+|{_KEPT_DELIMITERS}", _KEPT_DELIMITERS)
        too_long = tf.strings.length(words, unit="UTF8_CHAR") > _MAX_WORD_CHARS
        return tf.ragged.map_flat_values(lambda w, long: tf.where(long, "[UNK]", w), words, too_long)

    def token_ids(self, text: tf.Tensor) -> tf.RaggedTensor:
        """WordPiece ids of each string, without special tokens, ``(batch, None)``."""
        return self.wordpiece.tokenize(self.words(tf.reshape(text, [-1]))).merge_dims(1, 2)

    def call(self, inputs):
        if isinstance(inputs, (tuple, list)):
            segments = [self.token_ids(x) for x in inputs]
            budget = self.max_length - 1 - len(segments)
            segments = tf_text.RoundRobinTrimmer(budget).trim(segments)
        else:
            segments = [self.token_ids(inputs)[:, : self.max_length - 2]]
        ids, types = tf_text.combine_segments(segments, self.cls_id, self.sep_id)
        if self.fixed_length:
            input_ids, mask = tf_text.pad_model_inputs(ids, self.max_length, pad_value=self.pad_id)
            token_type_ids, _ = tf_text.pad_model_inputs(types, self.max_length, pad_value=0)
        else:
            input_ids, token_type_ids = ids.to_tensor(self.pad_id), types.to_tensor(0)
            mask = tf.ones_like(ids).to_tensor(0)
        return {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": token_type_ids}

    def get_config(self):
        return {
            **super().get_config(),
            "vocabulary": self.vocabulary,
            "lower_case": self.lower_case,
            "max_length": self.max_length,
            "fixed_length": self.fixed_length,
        }
