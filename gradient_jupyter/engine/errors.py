"""One exception hierarchy for the engine; each front end maps it once (HTTP status, UsageError, exit code)."""

from __future__ import annotations


class GradientError(Exception):
    """Base of every error the engine raises on purpose. `message` is safe to show a user."""

    status = 500
    reason = "error"
    request_id: str | None = None  # the store's id of the failed request (StoreError), for its operator

    def __init__(self, message: str, *, reason: str | None = None):
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason

    def to_json(self) -> dict:
        return {"message": self.message, "reason": self.reason}


class BadInput(GradientError):
    status, reason = 400, "bad-input"


class NotFound(GradientError):
    status, reason = 404, "not-found"


class Forbidden(GradientError):
    """Refused by rule, whoever asks: a team provider changed by a user (`team-provider`, naming the team file an
    administrator changes), a write into a read-only provider (`read-only-provider`). README, "Deploying for a
    team"."""

    status, reason = 403, "forbidden"


class Conflict(GradientError):
    status, reason = 409, "conflict"


class TagInUse(Conflict):
    """`save --tag T` where T names another version: tags move only when asked (`--move-tag`, `move_tag=True`).
    `tag` and `version` (the version it names) let a front end word its own way on."""

    reason = "tag-in-use"

    def __init__(self, message: str, *, tag: str = "", version: str = ""):
        super().__init__(message)
        self.tag, self.version = tag, version


class LocalChanges(Conflict):
    """`load` found files in the destination (`dest`) that neither the version nor an earlier load put there
    (`paths`). The message names the console's and Python's way on; the panel words its own (its question)."""

    reason = "local-changes"

    def __init__(self, message: str, paths: list[str], dest: str = ""):
        super().__init__(message)
        self.paths, self.dest = paths, dest


class Immutable(Conflict):
    reason = "immutable"


class QuotaExceeded(GradientError):
    status, reason = 413, "quota-exceeded"


class StoreError(GradientError):
    """The storage endpoint failed or refused; the detail says what happened in plain words."""

    status, reason = 502, "store-error"


class IntegrityError(StoreError):
    """Bytes in the store do not match what the manifest promises."""

    reason = "integrity"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C (or a kernel interrupt) stopped a save; `message` says what it left behind and how to go on. A
    KeyboardInterrupt still, so whatever stops on Ctrl-C stops on it."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def interrupted(exc: KeyboardInterrupt) -> str:
    """The one line every front end shows for Ctrl-C: what stopped, and how to go on."""
    return f"Interrupted: {exc.message}" if isinstance(exc, Interrupted) else "Interrupted."
