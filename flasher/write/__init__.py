"""Writing a plan: which sectors differ (survey), what to write (dedupe), retries and verify."""
