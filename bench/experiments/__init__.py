"""One-off experiments behind figures in docs/: `python -m bench.experiments.<name> --help`."""
