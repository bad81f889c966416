"""The whole collection at once: a 2-D photo map of the search index, and near-duplicate groups."""
