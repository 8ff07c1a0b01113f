"""The measuring side: timing, phases, calibration, environment, the step-time run and A/B."""
