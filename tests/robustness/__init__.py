"""Robustness tests: bad signals, gaps, privacy, safety, chunking (issue 8)."""
