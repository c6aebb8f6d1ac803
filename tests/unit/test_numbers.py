"""bench.inputs.numbers, the one parser of user numbers: properties over any input (hypothesis)."""

from __future__ import annotations

import argparse
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.inputs.errors import ConfigError
from bench.inputs.numbers import COUNT, Limits, check, count_list, flag

LIMITS = st.builds(
    Limits, low=st.one_of(st.none(), st.floats(-1e6, 1e6)), high=st.one_of(st.none(),
                                                                           st.floats(-1e6, 1e6)),
    low_open=st.booleans(), integer=st.booleans())
ANY = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.booleans(),
                st.text(max_size=20), st.none(), st.lists(st.integers(), max_size=2))


def _admitted(value: float, limits: Limits) -> bool:
    if not math.isfinite(value) or (limits.integer and not value.is_integer()):
        return False
    if limits.low is not None and (value <= limits.low if limits.low_open
                                   else value < limits.low):
        return False
    return limits.high is None or value <= limits.high


@given(value=ANY, limits=LIMITS)
def test_accepts_exactly_the_finite_numbers_in_range(value, limits):
    number = isinstance(value, int | float) and not isinstance(value, bool)
    expected = number and _admitted(float(value), limits)
    if expected:
        out = check(value, "--x", limits)
        kind = int if limits.integer else float
        assert out == kind(value) and isinstance(out, kind)
    else:
        with pytest.raises(ConfigError) as e:
            check(value, "--x", limits)
        assert e.value.field == "--x" and str(e.value).startswith("--x: must be ")
        assert "\n" not in str(e.value)


@given(value=st.floats(allow_nan=True, allow_infinity=True), limits=LIMITS)
def test_flag_text_parses_as_the_number_it_prints(value, limits):
    parse = flag(limits)
    if _admitted(value, limits):
        assert parse(repr(value)) == value
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="^must be "):
            parse(repr(value))


@given(n=st.integers(min_value=-(10**30), max_value=10**30))
def test_counts_are_exact_integers_in_range(n):
    if 1 <= n <= COUNT.high:
        assert check(str(n), "--batch", COUNT, text=True) == n
    else:
        with pytest.raises(ConfigError, match="--batch: must be an integer >= 1"):
            check(str(n), "--batch", COUNT, text=True)


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e300", "2.5", "true", "", "0x10",
                                  "1" * 5000])
def test_bad_count_text(text):
    with pytest.raises(ConfigError, match="^--nproc: must be an integer"):
        check(text, "--nproc", COUNT, text=True)


def test_text_is_a_number_only_for_flags():
    with pytest.raises(ConfigError, match=r"got '8'"):
        check("8", "batch", COUNT)
    assert check("8", "batch", COUNT, text=True) == 8
    assert check(8.0, "batch", COUNT) == 8 and check("1e3", "b", COUNT, text=True) == 1000


def test_count_list():
    assert count_list("1, 2,4", "--nproc") == [1, 2, 4]
    for bad in ("", ",", "1,x", "1,0", "1,inf"):
        with pytest.raises(ConfigError, match="^--nproc: "):
            count_list(bad, "--nproc")
