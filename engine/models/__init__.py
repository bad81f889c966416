"""Model definitions, loaders and the in-memory model cache."""
