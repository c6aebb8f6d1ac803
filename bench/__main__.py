"""`python -m bench` is the `trnbench` command (and what torchrun starts on every rank)."""

import os
import sys

from bench.cli import main, torchrun_worker

code = main()
if torchrun_worker():
    # A torchrun worker whose run is over (its record gathered, stored and printed) ends
    # without interpreter teardown: process groups left to it (DeviceMesh sub-groups under
    # TP/FSDP2) are destroyed there, where Gloo's C++ threads can abort a rank that already
    # finished ("terminate called without an active exception", SIGABRT; pytorch/pytorch
    # #179291), and torchrun would report the run as failed.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(int(code or 0))
sys.exit(code)
