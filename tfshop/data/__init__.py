"""The data layer: canonical shop tables, adapters, the simulator, prepare and the tf.data pipeline."""
