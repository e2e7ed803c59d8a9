"""Build real git repositories in tests, with pinned authors, committers and dates.

Tests write files, commit them as a given person with given trailers, and merge branches the
way GitHub does (merge commit, squash, rebase), all through the git command line so that the
repositories are exactly what a user would have.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support.people import ADA, EPOCH

DEFAULT_AUTHOR = ADA.identity


@dataclass
class GitRepo:
    path: Path
    clock: int = EPOCH  # seconds; every commit advances it by a minute
    env: dict[str, str] = field(default_factory=dict)

    @classmethod
    def init(cls, path: Path, branch: str = "main") -> GitRepo:
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        repo.git("init", "-q", "-b", branch)
        repo.git("config", "user.name", DEFAULT_AUTHOR[0])
        repo.git("config", "user.email", DEFAULT_AUTHOR[1])
        repo.git("config", "commit.gpgsign", "false")
        return repo

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        full_env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.path), **(env or {})}
        result = subprocess.run(
            ["git", *args], cwd=self.path, env=full_env, check=True, capture_output=True, text=True
        )
        return result.stdout.strip()

    def write(self, relpath: str, content: str | dict[str, object]) -> Path:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False)
        target.write_text(text, encoding="utf-8")
        return target

    def remove(self, relpath: str) -> None:
        (self.path / relpath).unlink()

    def commit(
        self,
        message: str,
        *,
        author: tuple[str, str] = DEFAULT_AUTHOR,
        committer: tuple[str, str] | None = None,
        trailers: list[tuple[str, str]] | None = None,
        when: int | None = None,
    ) -> str:
        """Commit everything in the work tree; return the new commit's sha."""
        self.clock = when if when is not None else self.clock + 60
        committer = committer or author
        body = message
        if trailers:
            body += "\n\n" + "\n".join(f"{k}: {v}" for k, v in trailers)
        date = f"{self.clock} +0000"
        self.git("add", "-A")
        self.git(
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            body,
            env={
                "GIT_AUTHOR_NAME": author[0],
                "GIT_AUTHOR_EMAIL": author[1],
                "GIT_AUTHOR_DATE": date,
                "GIT_COMMITTER_NAME": committer[0],
                "GIT_COMMITTER_EMAIL": committer[1],
                "GIT_COMMITTER_DATE": date,
            },
        )
        return self.head()

    def head(self, ref: str = "HEAD") -> str:
        return self.git("rev-parse", ref)
