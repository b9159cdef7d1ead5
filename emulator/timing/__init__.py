"""Simulated time: the board's timelines, the datasheet durations, the closed-form model."""
