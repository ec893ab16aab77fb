"""tfshop: one multi-task TensorFlow/Keras model for e-commerce, from shop logs to TF Serving.

Keras 2 (``tf_keras``) is required by TensorFlow Recommenders, so the legacy-Keras switch is set
here, before anything imports TensorFlow.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
