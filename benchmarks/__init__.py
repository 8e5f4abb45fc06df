"""Benchmarks: scripts that measure watchnext and write reports, never timed assertions in tests.

`watchnext bench <name> [--quick] [--out reports/]` (or `python -m watchnext.benchmarks <name>`)
runs one benchmark and writes `<out>/<name>.json` (every figure, the parameters and the machine:
CPU model, cores, load average, versions, date), `<out>/<name>.md` (Markdown tables) and PNG
plots. Each benchmark is one module with `SIZES` (smoke / quick / full) and
`run(context, sizes) -> BenchmarkResult`; `cli.py` lists them.
"""
