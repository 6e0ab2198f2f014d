"""Bundled sample G-code."""
