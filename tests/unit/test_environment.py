"""The host part of a record's environment: the CPU's model as /proc/cpuinfo gives it."""

from __future__ import annotations

import platform

from bench.backends.environment import cpu_model

# the head of /proc/cpuinfo (one block per processor), as Linux prints it
CPUINFO = """processor\t: 0
vendor_id\t: {vendor}
cpu family\t: {family}
model\t\t: {model}
model name\t: {name}
stepping\t: {stepping}

processor\t: 1
model name\t: other
"""


def test_a_model_name_with_its_number_is_kept():
    text = CPUINFO.format(vendor="GenuineIntel", family=6, model=143, stepping=8,
                          name="Intel(R) Xeon(R) Platinum 8488C")
    assert cpu_model(text) == "Intel(R) Xeon(R) Platinum 8488C"


def test_a_name_without_a_number_gets_the_cpuid_family_model_and_stepping():
    """A KVM guest on this project's machine sees "AMD EPYC": family 25 (19h), model 17
    (11h), stepping 1 say which EPYC it is."""
    text = CPUINFO.format(vendor="AuthenticAMD", family=25, model=17, stepping=1,
                          name="AMD EPYC")
    assert cpu_model(text) == "AMD EPYC (family 25, model 17, stepping 1)"


def test_without_a_model_name_the_platform_says_what_it_can():
    assert cpu_model("processor\t: 0\n") == (platform.processor() or platform.machine())
