"""`python -m bench` runs the `rnnbench` command line."""

from bench.cli import main

raise SystemExit(main())
