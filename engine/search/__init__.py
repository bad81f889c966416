"""Photo search: an incremental SQLite index of a folder's images and text/image queries."""
