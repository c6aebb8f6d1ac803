"""The record: its parts, derived figures, the store, ingest, labels, the pytest plugin."""
