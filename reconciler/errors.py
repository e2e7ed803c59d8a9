"""The one family of user-facing errors, and the exit codes the CLI maps them to.

Every layer raises a subclass of `ReconcilerError` for a problem the user can fix (bad input,
an unreachable remote, a missing token). Anything else escaping to the top is a bug, and the
CLI's single handler reports it as such with a distinct exit code.

`temporary` says whether the same operation may succeed later: the service loop retries a
temporary error with backoff, and records and moves on from any other. It is a class
attribute, False unless a subclass says otherwise. The whole tree, with the module (under
`reconciler.`) that defines each class and what it overrides (a test keeps this drawing
true):

    ReconcilerError                 errors
    ├── ConfigError                 errors
    │   └── RulesInvalid            decision.regime      exit 1
    ├── DocumentError               errors
    ├── GitError                    errors
    │   └── FetchError              reconcile.run        temporary
    ├── StoreError                  errors
    ├── ChangeError                 errors
    ├── GitHubError                 github.errors
    │   ├── GitHubAuthError         github.errors
    │   ├── GitHubForbidden         github.errors
    │   ├── GitHubNotFound          github.errors
    │   ├── GitHubValidation        github.errors
    │   ├── GitHubRateLimited       github.errors        temporary
    │   └── GitHubUnavailable       github.errors        temporary
    ├── WebhookPayloadError         github.webhooks
    ├── DivergedError               reconcile.run
    ├── AnotherPassError            reconcile.run        temporary, exit 0
    └── ServeError                  service.process

The HTTP API's `ApiError` (api.errors) is an error answer with a status, not a failure of a
command, so it stands outside this family.
"""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_FINDINGS = 1  # validation found errors / plan has changes
EXIT_USAGE = 2  # usage or I/O error: the command could not do its job
EXIT_BUG = 3  # an unexpected exception: a bug in the reconciler


# `scheme://user:PASSWORD@` up to the last `@` (a password may hold one), and `password=` in a query.
_USERINFO_PASSWORD = re.compile(r"(://[^:/@\s]*:)\S*@")
_QUERY_PASSWORD = re.compile(r"((?:password|passwd)=)[^&\s]*", re.IGNORECASE)


def mask_password(text: str) -> str:
    """`text` with the password of any URL in it replaced by `***`, textually: it works on
    URLs that do not parse, and on messages that quote one."""
    return _QUERY_PASSWORD.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1***@", text))


class ReconcilerError(Exception):
    """A problem the user can act on. `str(err)` says what, where and what to do.

    `temporary`: whether a later attempt may succeed (retry) or not (record and move on).
    """

    exit_code = EXIT_USAGE
    temporary = False


class ConfigError(ReconcilerError):
    """The policy repository, a flag or an option is unusable as given."""


class DocumentError(ReconcilerError):
    """A file could not be read as a policy-repository document (YAML safety, encoding)."""

    def __init__(self, path: str, message: str, line: int | None = None, column: int | None = None):
        self.path = path
        self.message = message
        self.line = line
        self.column = column
        where = path if line is None else f"{path}:{line}:{column or 1}"
        super().__init__(f"{where}: {message}")


class GitError(ReconcilerError):
    """Git access failed: unreachable remote, unknown ref, not a repository."""


class StoreError(ReconcilerError):
    """The flag store could not be opened or written."""


class ChangeError(ReconcilerError):
    """A change request cannot apply to the flag as it stands; the reason is the message.

    `pointer` is the place in the change request the refusal is about (a JSON pointer such as
    `/spec/base_version`, empty when it is the whole file) and `rule` a short name for the kind
    of refusal, so that `validate --base` reports it as a finding with a line.
    """

    def __init__(self, message: str, *, stale: bool = False, pointer: str = "", rule: str = "cannot-apply"):
        self.stale = stale
        self.pointer = pointer
        self.rule = rule
        super().__init__(message)
