"""The reading side: statistics, tables, reports, plots, compare and check (no TensorFlow)."""
