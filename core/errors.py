"""The failures a user can fix, each with the exit status `watchnext` ends with.

The command line prints such an error as one line (its message names the file, line,
field or config key at fault) and exits with the class's `exit_code`; a traceback is
shown only with `-v`, and is always written to the run's log file. Anything else is a
bug in watchnext: exit status 1, with the traceback in the log file.

This module imports nothing, so the command line can import it before TensorFlow.
"""

from __future__ import annotations

# Exit statuses of `watchnext` (the README's table is checked against these in tests).
EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_NOT_BLESSED = 3
EXIT_DATA_VALIDATION = 4
EXIT_BAD_INPUT = 5


class WatchnextError(Exception):
    """A failure caused by what the user gave watchnext, not by a bug in it."""

    exit_code = EXIT_INTERNAL


class UsageError(WatchnextError):
    """Bad flags, a bad config, a missing path, or an output folder another run holds."""

    exit_code = EXIT_USAGE


class BadInputData(WatchnextError):
    """A log or table file cannot be read (corrupt, truncated, unknown format), or too many of
    its records were rejected."""

    exit_code = EXIT_BAD_INPUT


class DataValidationFailed(WatchnextError, RuntimeError):
    """The new span has data anomalies; nothing downstream of the validators ran."""

    exit_code = EXIT_DATA_VALIDATION


class TooManyRejected(BadInputData, RuntimeError):
    """An ExampleGen rejected more records than `data.max_rejected_fraction` allows."""
