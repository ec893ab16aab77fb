"""Training: targets and losses per task, callbacks, and the ``train`` stage."""
