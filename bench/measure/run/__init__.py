"""`rnnbench run`: the command, its Collector pytest plugin and the run folder's report."""
