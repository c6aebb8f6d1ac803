"""Error classes of bad input, in a leaf module with no torch import: the verbs that start
fast (``--help``, ``report``, ``compare``, ``project``, ``models``) raise them without loading
the training stack. ``bench.config`` re-exports ``ConfigError``."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad input: names the field and what is accepted; the CLI prints it as one line."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
