"""Step time of every selected case: forward, backward or train step (pytest-benchmark).

Cases come from `--preset` and the filters (see conftest.py); the test id is the case id.
"""


def test_step_time(case, benchmark, measure_case):
    """Time one case; its ok / skipped / error row goes to the run's results."""
    measure_case(case, benchmark)
