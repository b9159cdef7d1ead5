"""Helpers the tests share (fakes, bench procedures, golden paths, the README layout check)."""
