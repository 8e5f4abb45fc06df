"""`python -m bench <name> [--quick] [--out reports/]`."""

from bench.cli import main

raise SystemExit(main())
