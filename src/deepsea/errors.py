"""Errors a user can act on.

Every failure that bad input or bad configuration can cause is raised as a `DeepseaError` whose message names the
file or key at fault and says how to fix it. The CLI prints such errors without a traceback and exits non-zero;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class DeepseaError(Exception):
    """An error caused by input or configuration, with a message meant for the user."""


class BadImageError(DeepseaError):
    """One or more images could not be read, are empty, or are not images."""


class ConfigError(DeepseaError):
    """A setting is missing, mistyped or out of range."""


class DataMismatchError(DeepseaError):
    """Two inputs that must describe the same images (ids, classes) disagree."""


class NonFiniteError(DeepseaError):
    """A loss or a prediction contains NaN or infinity."""
