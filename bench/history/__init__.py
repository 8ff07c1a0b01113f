"""History: every run, tta and ab folder indexed in a store, series, change points, a static site."""
