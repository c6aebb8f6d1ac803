"""The CLI's own list of backend names, which lets the verbs start without importing the backends
(tests/integration/test_startup.py), matches the backends' registry."""

from __future__ import annotations


def test_backend_choices_match_the_registry():
    from bench.backends import selection
    from bench.inputs import config

    assert tuple(selection.names()) == config.BACKEND_NAMES
