"""The exceptions deepresolve raises for user mistakes.

Every mistake a user can make -- a bad argument, a file that cannot be read, a model that cannot be split, a
checkpoint of another run -- raises a :class:`DeepResolveError` whose message names what was wrong, what was
expected and what was given. The command line catches this one family, prints the message as one line and exits
with status 2; any other exception is a bug and keeps its traceback.

The subclasses also derive from the built-in exception a Python user would expect (``ValueError``, ``TypeError``,
``FileNotFoundError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class DeepResolveError(Exception):
    """Base class of every user-facing error: the message is complete on its own, one line."""


class ArgumentError(DeepResolveError, ValueError, TypeError):
    """An argument has the wrong type or value."""


class ModelError(DeepResolveError, ValueError):
    """A model cannot be loaded, split at the chosen layer, or run on the given input shape."""


class FileFormatError(DeepResolveError, ValueError):
    """A file exists but its content is not what was expected (truncated HDF5, bad FASTA or MEME, missing weight)."""


class MissingFileError(DeepResolveError, FileNotFoundError):
    """A file or folder that was named does not exist."""


class CheckpointError(DeepResolveError):
    """A checkpoint belongs to another run (other model or settings) or cannot be used."""



class DivergenceError(DeepResolveError, FloatingPointError):
    """A computation left the finite numbers (e.g. the ascent diverged): the message says which setting to change."""
