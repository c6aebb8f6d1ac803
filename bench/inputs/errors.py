"""The errors every verb reports the same way, in a leaf module (no torch, no pandas): the
verbs that start fast (``--help``, ``report``, ``compare``, ``project``, ``models``) raise them
without loading the training stack.

``ConfigError``: bad input, one line naming the field, exit 2. ``Interrupted``: SIGINT,
SIGTERM or SIGHUP, stored as an ``interrupted`` record and ended with exit 128 + the signal
number (130, 143, 129), as a shell reports a process killed by that signal.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


class ConfigError(ValueError):
    """Bad input: names the field and what is accepted; the CLI prints it as one line."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class Interrupted(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP arrived; caught wherever Ctrl-C (KeyboardInterrupt) is."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def signal_of(interrupt: BaseException) -> signal.Signals:
    """The signal behind a KeyboardInterrupt (Python raises a plain one for SIGINT)."""
    return signal.Signals(getattr(interrupt, "signum", signal.SIGINT))


def _raise(signum: int, frame: object) -> None:
    raise Interrupted(signum)


@contextlib.contextmanager
def raise_on_signals() -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise ``Interrupted`` in the main thread
    (SIGTERM's default would end the process with no record: what Slurm, ``docker stop``
    and systemd send; SIGHUP, a closed terminal's); the previous handlers come back after
    it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise)
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
