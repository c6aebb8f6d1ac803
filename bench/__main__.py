"""`python -m bench` is the `trnbench` command."""

import sys

from bench.cli import main

sys.exit(main())
