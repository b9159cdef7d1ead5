"""Fault injection: what a scenario says is wrong, wired into the board's hook points."""
