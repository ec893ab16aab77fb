"""The pipeline: a config's stages run in order in one run directory.

Each stage is a module of ``tfshop.pipeline.stages`` that registers itself once
(:func:`tfshop.pipeline.registry.stage`): its name, what it does, and the file or folder that
shows it is done. The CLI, the config's validation and the docs read that registry.
"""
