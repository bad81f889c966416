"""The run store: run folders, atomic checkpoints, cards and metrics (checkpoint.py), and the
runs list with each run's live status, found by name or path (listing.py).

Below training and every feature that reads runs (the catalogue, generate's bundle), above
nothing but paths and errors: a run is data on disk, whoever wrote it."""
