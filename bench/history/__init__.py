"""History: run, tta and ab folders indexed in a store; series, change points, a static site."""
