"""Everything that is seen. Never imports torch: it receives plain data from the engine."""
