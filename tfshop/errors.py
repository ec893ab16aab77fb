"""Errors a user can cause: the CLI prints their message on one line and exits non-zero."""


class TfshopError(Exception):
    """A problem with the user's input (file, column, config key), worded for the user."""


class ConfigError(TfshopError):
    """A configuration file or value is invalid."""


class DataError(TfshopError):
    """An input file or table is unusable as a whole (missing, empty, wrong columns or types)."""


class TrainingError(TfshopError):
    """Training cannot produce a model from this data and config (a loss that became NaN)."""
