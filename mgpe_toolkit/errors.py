"""Errors a user can cause, and the exit codes of DESIGN.md §6."""
from __future__ import annotations

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2


class MgpeError(Exception):
    """A user-facing error: the CLI prints its one-line message, never a traceback."""

    exit_code = EXIT_SOME_FAILED


class UsageError(MgpeError):
    """Bad arguments or configuration (exit 2)."""

    exit_code = EXIT_USAGE


class InputError(MgpeError):
    """One input file is unusable: its message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self):
        return type(self), (self.path, self.problem)


class OutputError(MgpeError):
    """An output cannot be written (read-only folder, disk full, ...): a run stops with what it wrote kept."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"cannot write {self.path}: {problem}")

    def __reduce__(self):  # crosses process boundaries (batch workers) intact
        return type(self), (self.path, self.problem)


class MaskOpError(UsageError):
    """A malformed --mask-op."""

    def __init__(self, op: str, problem: str):
        self.op = op
        self.problem = problem
        super().__init__(f"bad mask op {op!r}: {problem}")


class PluginError(UsageError):
    """An unknown or unusable stage implementation."""


class NoFaceError(MgpeError):
    """No face was found where one was needed (counted as 'no-face' in batch summaries)."""


class DivergedError(MgpeError):
    """A training run met a non-finite loss or weights: it stops there, its last good checkpoint kept."""
