"""Output: `trnbench report` and `compare` tables, plots and pages, the terminal console, and
instance prices."""
