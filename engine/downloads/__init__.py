"""Fetching weights on explicit request: resumable, cancellable, verified, atomic."""
