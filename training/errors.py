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

    def __init__(self, path: str, problems: list[tuple[int, str, str]]):
        self.path = path
        self.problems = problems
        shown = "; ".join(f"line {ln}: {field}: {msg}" for ln, field, msg in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{path}: nothing imported: {shown}{more}")
