"""`reconciler init`: a new policy repository that validates clean and shows the shape.

The files come from the templates shipped in `templates/` (the caller workflow among them, in
one file of its own), filled in with the current git user, the GitHub repository of the
`origin` remote, freshly generated API tokens and this package's version. The JSON Schemas
are written next to them (`schemas/`), so editors resolve the modelines and the
`.vscode/settings.json` associations without a network.

An existing file is never overwritten: it is kept as it is and reported. Nothing is written
through a symlink or into anything but a regular file: every target is checked before the
first write, and each file is created with `O_CREAT | O_EXCL | O_NOFOLLOW` relative to a
directory opened without following links, so a link planted in between fails too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from reconciler import __version__
from reconciler.errors import ConfigError
from reconciler.gitrepo.repository import git_setting
from reconciler.model.documents import LOGIN_PATTERN
from reconciler.model.schema import KINDS, SCHEMA_FILES, schema_text
from reconciler.model.states import FLAG_ACTIONS
from reconciler.repo.layout import MEMBERS_FILE, PROJECT_FILE

__all__ = ["InitResult", "github_repository", "init_repository", "planned_files"]

SCHEMA_DIR = "schemas"
PLACEHOLDER_REPOSITORY = "OWNER/NAME"
PLACEHOLDER_LOGIN = "CHANGE-ME-your-login"
PLACEHOLDER_EMAIL = "you@example.com"
TOKEN_PREFIX = "phc_"  # noqa: S105 - the prefix of PostHog's public project keys, not a secret
EXAMPLE_CHANGE = "changes/create-example-flag-staging.yaml"

# (environment, approvals a flag change there needs, in words)
_ENVIRONMENTS = (("production", 2, "two release managers"), ("staging", 1, "one release manager"))
_META = (
    ("policy-changes", "approval_policy.change", "Adding, editing or removing a policy"),
    ("member-changes", "members.change", "Changing who is a member or holds a role"),
)
_GITHUB_REMOTE = re.compile(
    r"^(?:https://(?:[^@/]*@)?github\.com/|ssh://git@github\.com/|git@github\.com:)"
    r"([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?$"
)
_LOGIN = re.compile(LOGIN_PATTERN)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


@dataclass
class InitResult:
    """What `init_repository` did, path by path (relative to the directory, POSIX)."""

    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def github_repository(url: str | None) -> str | None:
    """`owner/name` of a GitHub remote URL (HTTPS, SSH or scp-like), else None."""
    if not url:
        return None
    match = _GITHUB_REMOTE.match(url.strip())
    return f"{match.group(1)}/{match.group(2)}" if match else None


def _template(name: str) -> str:
    return resources.files(__package__).joinpath("templates", name).read_text(encoding="utf-8")


def _fill(text: str, **values: str) -> str:
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    if "@@" in text:
        raise AssertionError(f"a template placeholder was left unfilled: {text[text.index('@@') :][:40]}")
    return text


def _scalar(value: str) -> str:
    """`value` as a YAML scalar that reads back exactly (a JSON string is a YAML one)."""
    return json.dumps(value)


def planned_files(
    *,
    login: str | None,
    user_name: str | None,
    user_email: str | None,
    repository: str | None,
) -> dict[str, str]:
    """Every file `init` writes, path → content, in the order they are written."""
    notes_login = (
        ""
        if login
        else f"\n    # CHANGE ME: {PLACEHOLDER_LOGIN} is a placeholder (git cannot tell a GitHub login)."
    )
    email = user_email if user_email and _EMAIL.match(user_email) else None
    first, _, last = (user_name or "").strip().partition(" ")
    owner_note = notes_login + ("" if email else "\n    # CHANGE ME: the email is a placeholder.")
    files: dict[str, str] = {
        PROJECT_FILE: _fill(
            _template("reconciler.yaml"),
            SCHEMAS=SCHEMA_DIR,
            PRODUCTION_TOKEN=TOKEN_PREFIX + secrets.token_urlsafe(32),
            STAGING_TOKEN=TOKEN_PREFIX + secrets.token_urlsafe(32),
            REPOSITORY=repository
            if repository
            else f"{PLACEHOLDER_REPOSITORY}  # CHANGE ME: owner/name of this repository on GitHub",
        ),
        MEMBERS_FILE: _fill(
            _template("members.yaml"),
            SCHEMAS=SCHEMA_DIR,
            OWNER_NOTE=owner_note,
            OWNER_LOGIN=login or PLACEHOLDER_LOGIN,
            OWNER_EMAIL=_scalar(email or PLACEHOLDER_EMAIL),
            OWNER_FIRST=_scalar(first),
            OWNER_LAST=_scalar(last.strip()),
        ),
    }
    # One file per environment: the action list spares a file per action.
    for environment, quorum, approvers in _ENVIRONMENTS:
        files[f"policies/{environment}-flags.yaml"] = _fill(
            _template("flag-policy.yaml"),
            SCHEMAS=SCHEMA_DIR,
            ENV=environment,
            ACTIONS="\n".join(f"    - {action}" for action in FLAG_ACTIONS),
            QUORUM=str(quorum),
            DESCRIPTION=_scalar(f"Any flag change in {environment} needs {approvers} besides its author."),
        )
    for name, action, what in _META:
        files[f"policies/{name}.yaml"] = _fill(
            _template("meta-policy.yaml"),
            SCHEMAS=SCHEMA_DIR,
            NAME=name,
            ACTION=action,
            DESCRIPTION=_scalar(f"{what} needs two release managers besides its author."),
        )
    files[EXAMPLE_CHANGE] = _fill(_template("example-change.yaml"), SCHEMAS=SCHEMA_DIR)
    files[".gitignore"] = _template("gitignore")
    files[".github/workflows/validate.yml"] = _fill(_template("validate.yml"), VERSION=__version__)
    files[".pre-commit-config.yaml"] = _fill(_template("pre-commit-config.yaml"), VERSION=__version__)
    files[".vscode/settings.json"] = _fill(_template("vscode-settings.json"), SCHEMAS=SCHEMA_DIR)
    for kind in KINDS:
        files[f"{SCHEMA_DIR}/{SCHEMA_FILES[kind]}"] = schema_text(kind)
    return files


def init_repository(directory: str | os.PathLike[str], *, login: str | None = None) -> InitResult:
    """Write a new policy repository into `directory` (created when missing), keeping every
    file that exists. Raises `ConfigError` before writing anything when `directory` is not a
    directory, or when a path to write is a symlink or not a regular file."""
    if login is not None and not _LOGIN.match(login):
        raise ConfigError(f"--login {login!r} is not a GitHub login (letters, digits and '-', at most 39)")
    root = Path(directory)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} exists and is not a directory: give a directory for the new repository")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create {root}: {err.strerror or err}") from err
    result = InitResult()
    repository = github_repository(git_setting(root, "remote.origin.url"))
    if repository is None:
        result.notes.append(
            f"spec.github.repository is the placeholder {PLACEHOLDER_REPOSITORY}: no GitHub remote 'origin'"
        )
    if login is None:
        result.notes.append(
            f"members.yaml: replace the placeholder login {PLACEHOLDER_LOGIN} (or pass --login)"
        )
    files = planned_files(
        login=login,
        user_name=git_setting(root, "user.name"),
        user_email=git_setting(root, "user.email"),
        repository=repository,
    )
    existing = {path for path in files if _check_target(root, path)}
    for path, content in files.items():
        if path in existing:
            result.kept.append(path)
        elif _write_new(root, path, content.encode("utf-8")):
            result.written.append(path)
        else:
            result.kept.append(path)
    return result


def _components(path: str) -> Iterator[tuple[str, bool]]:
    parts = path.split("/")
    for i in range(len(parts)):
        yield "/".join(parts[: i + 1]), i == len(parts) - 1


def _check_target(root: Path, path: str) -> bool:
    """Whether `path` exists as a regular file (to keep); refuse a symlink or another kind of
    entry at it or at a directory on the way."""
    for prefix, last in _components(path):
        try:
            mode = os.lstat(root / prefix).st_mode
        except FileNotFoundError:
            return False
        except OSError as err:
            raise ConfigError(f"cannot inspect {root / prefix}: {err.strerror or err}") from err
        if stat.S_ISLNK(mode):
            raise ConfigError(
                f"refusing to write through {root / prefix}: it is a symlink; remove it or init elsewhere"
            )
        wanted, ok = ("a regular file", stat.S_ISREG(mode)) if last else ("a directory", stat.S_ISDIR(mode))
        if not ok:
            raise ConfigError(f"refusing to write {root / path}: {root / prefix} exists and is not {wanted}")
    return True


def _write_new(root: Path, path: str, data: bytes) -> bool:
    """Create `path` below `root` with `data`; False when a regular file appeared there meanwhile."""
    *directories, name = path.split("/")
    fd = os.open(root, os.O_RDONLY | _O_DIRECTORY)
    try:
        for directory in directories:
            with contextlib.suppress(FileExistsError):
                os.mkdir(directory, 0o755, dir_fd=fd)
            try:
                child = os.open(directory, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW, dir_fd=fd)
            except OSError as err:
                raise ConfigError(
                    f"refusing to write {root / path}: {directory} is a symlink or not a directory"
                    f" ({err.strerror})"
                ) from err
            os.close(fd)
            fd = child
        try:
            out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW, 0o644, dir_fd=fd)
        except FileExistsError:
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
            if stat.S_ISREG(mode):
                return False
            raise ConfigError(
                f"refusing to write {root / path}: it is a symlink or not a regular file"
            ) from None
        except OSError as err:
            raise ConfigError(f"cannot write {root / path}: {err.strerror or err}") from err
        with os.fdopen(out, "wb") as handle:
            handle.write(data)
        return True
    finally:
        os.close(fd)
