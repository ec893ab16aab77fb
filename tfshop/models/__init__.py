"""Keras models built from the schema and a model config."""
