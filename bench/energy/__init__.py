"""Energy meters, one module per sensor family behind one interface (``base.Meter``);
``meters.make_meter`` picks one for a run."""
