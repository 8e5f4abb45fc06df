"""`python -m watchnext.benchmarks <name> [--quick] [--out reports/]`."""

from watchnext.benchmarks.cli import main

raise SystemExit(main())
