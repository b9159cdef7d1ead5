"""Many boards at once: the runner, the live view, the production log."""
