"""The RunConfig fields' Options are the one table of the run flags, the TOML readers,
``config.validate`` and ``config.to_argv``: the round trip of any valid configuration, and a
field added to RunConfig alone reaching every one of them."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import cli
from bench.inputs import config, numbers
from bench.inputs.config import ConfigError, RunConfig
from models import registry


def _values(opt: config.Option) -> st.SearchStrategy:
    """Any value ``opt`` accepts, drawn from its own table entry."""
    if opt.boolean:
        return st.booleans()
    if opt.choices:
        return st.sampled_from(opt.choices)
    lim = opt.limits
    if lim.integer:
        return st.integers(int(lim.low), int(lim.high))
    return st.floats(min_value=lim.low, max_value=lim.high, exclude_min=lim.low_open,
                     allow_nan=False, allow_infinity=False)


@st.composite
def run_configs(draw) -> RunConfig:
    """A valid RunConfig: each field drawn from its Option; the sequence within the model's
    maximum; a field that a cross-field rule (bench.parallel.layout) refuses set back to its
    default, found through the flag its error names."""
    values = {name: draw(_values(opt)) for name, opt in config.OPTIONS.items()}
    # resolve takes the selected backend, never auto (bench.backends.selection.resolve_run)
    values["backend"] = draw(st.sampled_from(config.BACKEND_NAMES[1:]))
    values["seq"] = 1 + values["seq"] % registry.get(values["model"]).config.max_seq_len
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    for _ in config.OPTIONS:
        try:
            return config.validate(RunConfig(**values))
        except ConfigError as e:
            values[config.field_of(e.field)] = defaults[config.field_of(e.field)]
    raise AssertionError(f"no valid configuration from {values}")


def _parse(argv: list[str], verb: str = "run"):
    return cli.build_parser().parse_args([verb, *argv, *(["--nproc", "1"] if verb ==
                                                         "scaling" else [])])


@settings(max_examples=60, deadline=None)
@given(cfg=run_configs())
def test_to_argv_resolves_to_exactly_the_config(cfg):
    for verb in ("run", "scaling"):
        args = _parse(config.to_argv(cfg), verb)
        again = config.resolve(args.backend, config.flag_layer(args))
        assert again == cfg
        assert [type(getattr(again, f)) for f in config.OPTIONS] == \
            [type(getattr(cfg, f)) for f in config.OPTIONS]


@settings(max_examples=50, deadline=None)
@given(cfg=run_configs())
def test_a_toml_run_table_of_every_field_resolves_to_the_config(tmp_path_factory, cfg):
    path = tmp_path_factory.mktemp("toml") / "run.toml"
    path.write_text("[run]\n" + "".join(
        f"{name} = {_toml(getattr(cfg, name))}\n" for name in config.OPTIONS))
    assert config.resolve(cfg.backend, config.load_toml(path)) == cfg


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return f'"{value}"' if isinstance(value, str) else repr(value)


def test_every_field_has_one_flag_in_run_and_scaling():
    parser = cli.build_parser()
    verbs = parser._subparsers._group_actions[0].choices  # argparse's subparser map
    for verb in ("run", "scaling"):
        verbs[verb].format_help()  # a verb's flags are added when it is first used
        dests = {a.dest: a.option_strings for a in verbs[verb]._actions}
        for name, opt in config.OPTIONS.items():
            assert opt.flag in dests[name], (verb, name)
            assert opt.help, name
    assert config.OPTIONS["dist_timeout_s"].flag == "--dist-timeout"
    assert config.field_of("--dist-timeout") == "dist_timeout_s"


def test_a_field_without_an_option_is_refused_at_declaration():
    @dataclasses.dataclass(frozen=True)
    class Bare(RunConfig):
        extra: int = 1

    with pytest.raises(TypeError, match="Bare.extra is declared without config.option"):
        config.options(Bare)


def test_a_new_field_needs_no_other_edit(monkeypatch, tmp_path):
    """Declared once with its Option, a field is a flag of run and scaling, a TOML key,
    validated with its flag's name, and in to_argv."""

    @dataclasses.dataclass(frozen=True)
    class Extended(RunConfig):
        micro_steps: int = config.option(1, limits=numbers.COUNT, metavar="N",
                                         help="micro-batches per step")

    monkeypatch.setattr(config, "RunConfig", Extended)
    monkeypatch.setattr(config, "OPTIONS", config.options(Extended))
    (tmp_path / "run.toml").write_text('[run]\nmodel = "tiny"\nmicro_steps = 2\n')
    args = _parse(["--micro-steps", "3", "--config", str(tmp_path / "run.toml")])
    cfg = config.resolve("cpu", config.load_toml(args.config), config.flag_layer(args))
    assert cfg.micro_steps == 3
    assert config.resolve("cpu", config.load_toml(args.config)).micro_steps == 2
    argv = config.to_argv(cfg)
    assert argv[argv.index("--micro-steps") + 1] == "3"
    again = _parse(argv, "scaling")
    assert config.resolve(again.backend, config.flag_layer(again)) == cfg
    with pytest.raises(ConfigError, match=r"^--micro-steps: must be an integer >= 1"):
        config.resolve("cpu", {"model": "tiny", "micro_steps": 0})


@pytest.mark.parametrize(("field", "value", "message"), [
    ("precision", "fp8", "--precision: unknown precision 'fp8'; accepted: fp32, bf16"),
    ("parallel", "tp", "--parallel: unknown mode 'tp'; accepted: ddp, fsdp, hsdp"),
    ("ac", "some", "--ac: unknown value 'some'; accepted: none, full, selective"),
    ("param_dtype", "fp8", "--param-dtype: unknown value 'fp8'; accepted: fp32, bf16"),
    ("energy", "x", "--energy: unknown energy method 'x'; accepted: auto, nvml, neuron, "),
    ("data", "web", "--data: unknown data 'web'; accepted: synthetic"),
    ("compile", "yes", "--compile: must be true or false, got 'yes'"),
    ("dist_timeout_s", 0, "--dist-timeout: must be a finite number > 0 and <= 1000000000"),
    ("model", "nope", "--model: unknown model 'nope'; accepted: tiny, 125m, "),
])
def test_validate_names_the_flag_and_the_accepted_values(field, value, message):
    with pytest.raises(ConfigError) as e:
        config.resolve("cpu", {"model": "tiny", field: value})
    assert str(e.value).startswith(message)
