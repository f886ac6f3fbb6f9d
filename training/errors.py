"""Small named exceptions. Every message names what is wrong and, where it helps, what to do."""


class TokenwiseError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero."""


class NotFound(TokenwiseError):
    """A project, document, candidate, annotator, job or model does not exist."""


class AuthError(TokenwiseError):
    """A wrong, unknown or revoked access token."""


class Forbidden(TokenwiseError):
    """The annotator exists but may not see or change this."""


class ValidationError(TokenwiseError):
    """Input that breaks a rule: an incomplete ranking, an empty critique, a bad config value."""


class StoreBusy(TokenwiseError):
    """The database stayed locked by another writer (an import, a job) through every retry."""


class ImportFileError(ValidationError):
    """A refused import file. `problems` holds (line, field, message) for every bad line found."""

    def __init__(self, path: str, problems: list[tuple[int, str, str]], stopped_at: int | None = None):
        self.path = path
        self.problems = problems
        self.stopped_at = stopped_at  # the line where checking stopped (too many problems), else None
        shown = "; ".join(f"line {ln}: {field}: {msg}" for ln, field, msg in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{path}: nothing imported: {shown}{more}{self.stopped()}")

    def stopped(self) -> str:
        """"" or why the list may be incomplete."""
        return "" if self.stopped_at is None else (
            f" (checking stopped at line {self.stopped_at} after {len(self.problems)} problems; there may be more)")

    def count(self) -> str:
        """"50 problem(s)", or "50 problems or more" when checking stopped."""
        return f"{len(self.problems)} problems or more" if self.stopped_at is not None else f"{len(self.problems)} problem(s)"
