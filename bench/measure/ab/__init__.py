"""`rnnbench ab`: the command, the interleaving coordinator, the two sides and their worker."""
