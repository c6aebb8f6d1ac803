"""`--help` of every verb: every flag has a help text that shows its default, and where the
default depends on the backend (bench/inputs/defaults.toml) it names each backend's."""

from __future__ import annotations

import argparse
import re

import pytest

from bench import cli
from bench.inputs import config

VERBS = cli.build_parser()._subparsers._group_actions[0].choices  # argparse's subparser map
BACKENDS = config.BACKEND_NAMES[1:]


def _actions(verb: str) -> list[argparse.Action]:
    parser = VERBS[verb]
    parser.format_help()  # a verb's flags are added when it is first used
    return [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]


def _shows_no_default(action: argparse.Action) -> bool:
    """A flag that takes a value (or a --x/--no-x pair) whose help names no default. A switch
    (store_true) is off unless given; a required argument has none."""
    switch = action.nargs == 0 and not isinstance(action, argparse.BooleanOptionalAction)
    required = action.required or (not action.option_strings and action.nargs is None)
    return not (switch or required or "default" in (action.help or ""))


@pytest.mark.parametrize("verb", list(VERBS))
def test_every_flag_has_a_help_text_that_shows_its_default(verb):
    actions = _actions(verb)
    assert actions
    missing = [a.option_strings or [a.dest] for a in actions if not a.help]
    assert not missing, f"{verb}: no help text: {missing}"
    silent = [a.option_strings or [a.dest] for a in actions if _shows_no_default(a)]
    assert not silent, f"{verb}: the help shows no default: {silent}"
    VERBS[verb].format_help()  # the texts format (a stray % would raise)


def _defaults_in(help_text: str) -> dict[str, str]:
    """'default: 12 on cpu, xla; 30 on cuda' -> {'cpu': '12', 'xla': '12', 'cuda': '30'}."""
    note = help_text.split("default: ", 1)[1].split(" (", 1)[0]
    return {backend: value for part in note.split("; ")
            for value, _, backends in [part.partition(" on ")]
            for backend in backends.split(", ")}


@pytest.mark.parametrize("verb", ["run", "scaling", "plan"])
def test_a_backend_dependent_default_names_each_backends_from_defaults_toml(verb):
    by_flag = {a.option_strings[0]: a.help for a in _actions(verb) if a.option_strings}
    fields = {name for b in BACKENDS for name in config.backend_defaults(b)}
    assert {"model", "batch", "seq", "steps", "warmup", "precision"} <= fields
    for name in fields & set(config.OPTIONS):
        flag = config.OPTIONS[name].flag
        if flag not in by_flag:  # plan has no --steps or --warmup
            continue
        shown = _defaults_in(by_flag[flag])
        for backend in BACKENDS:
            value = config.backend_defaults(backend).get(name)
            assert shown[backend] == ("the model's" if value is None else str(value)), \
                (verb, flag, backend)


def test_run_help_names_the_cpu_and_accelerator_defaults():
    """What a reader of `trnbench run --help` sees, wrapped as argparse wraps it."""
    text = re.sub(r"\s+", " ", VERBS["run"].format_help())
    assert "--steps N timed steps; default: 30 on neuron, neuron-xla, cuda; 12 on cpu, xla" \
        in text
    assert "--warmup W warm-up steps before the window; default: 5 on neuron, neuron-xla, " \
        "cuda; 2 on cpu, xla" in text
