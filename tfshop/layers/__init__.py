"""Serialisable Keras layers of tfshop (all registered under the ``tfshop`` package name)."""
