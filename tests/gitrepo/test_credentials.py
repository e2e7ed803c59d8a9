"""Credentials in a repository URL reach git for the fetch alone: never the disk, never a message.

The remote is a real repository served over HTTP with basic authentication (git's "dumb"
protocol from a plain file server), so a clone and a fetch only succeed when the credentials
really travel with them.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import os
import stat
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import GitError
from reconciler.gitrepo.repository import GitRepository, clone_path, split_credentials
from tests.support.gitutil import GitRepo

USER, TOKEN = "x-access-token", "ghp_s3cretT0ken"


class _AuthHandler(http.server.SimpleHTTPRequestHandler):
    expected = "Basic " + base64.b64encode(f"{USER}:{TOKEN}".encode()).decode()

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[GitRepo, Path, str]]:
    """A work repository, the bare remote it pushes to, and that remote's HTTP URL (no credentials)."""
    work = GitRepo.init(tmp_path / "work")
    work.write("changes/a.yaml", "a: 1\n")
    work.commit("First")
    root = tmp_path / "www"
    remote = root / "policies.git"
    work.git("init", "-q", "--bare", "-b", "main", str(remote))
    work.git("remote", "add", "origin", str(remote))
    push(work, remote)
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_AuthHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield work, remote, f"http://127.0.0.1:{server.server_address[1]}/policies.git"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def push(work: GitRepo, remote: Path) -> None:
    work.git("push", "-q", "origin", "main")
    subprocess.run(["git", "--git-dir", str(remote), "update-server-info"], check=True)


def with_token(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{TOKEN}@")


def files_containing(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_a_token_in_the_url_fetches_but_never_lands_on_disk(
    served: tuple[GitRepo, Path, str], tmp_path: Path
) -> None:
    work, remote, url = served
    cache = tmp_path / "cache"
    with GitRepository.open(with_token(url), cache_dir=cache) as repo:
        assert repo.head() == work.head()
        assert repo.url == url
    config = (clone_path(url, cache) / "config").read_text()
    assert f"url = {url}\n" in config
    assert TOKEN not in config and USER not in config

    work.write("changes/b.yaml", "b: 2\n")
    second = work.commit("Second")
    push(work, remote)
    with GitRepository.open(with_token(url), cache_dir=cache) as repo:  # a fetch, with the token
        assert repo.head() == second
    assert files_containing(cache, TOKEN) == []


def test_the_clone_cache_is_private_to_its_owner(served: tuple[GitRepo, Path, str], tmp_path: Path) -> None:
    work, remote, url = served
    cache = tmp_path / "cache"
    old = os.umask(0o022)
    try:
        GitRepository.open(with_token(url), cache_dir=cache).close()
        work.write("changes/b.yaml", "b: 2\n")
        work.commit("Second")
        push(work, remote)
        GitRepository.open(with_token(url), cache_dir=cache).close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert stat.S_IMODE((cache / "repos").stat().st_mode) == 0o700
    shared = [p for p in clone_path(url, cache).rglob("*") if stat.S_IMODE(p.lstat().st_mode) & 0o077]
    assert shared == []


def test_without_the_token_the_fetch_fails_and_the_message_has_no_secret(
    served: tuple[GitRepo, Path, str], tmp_path: Path
) -> None:
    _work, _remote, url = served
    wrong = url.replace("http://", f"http://{USER}:wrong-{TOKEN}@")
    with pytest.raises(GitError) as caught:
        GitRepository.open(wrong, cache_dir=tmp_path / "cache")
    assert TOKEN not in str(caught.value)
    assert "Check the URL, the network and the credentials" in str(caught.value)


def test_an_old_clone_with_the_token_in_its_config_is_cleaned(
    served: tuple[GitRepo, Path, str], tmp_path: Path
) -> None:
    work, _remote, url = served
    cache = tmp_path / "cache"
    # What earlier versions left: a clone keyed by the URL with its token, the token in its config.
    legacy = cache / "repos" / f"{hashlib.sha256(with_token(url).encode()).hexdigest()[:24]}.git"
    legacy.parent.mkdir(parents=True)
    subprocess.run(
        ["git", "clone", "-q", "--bare", with_token(url), str(legacy)], check=True, capture_output=True
    )
    legacy.chmod(0o755)
    assert TOKEN in (legacy / "config").read_text()

    with GitRepository.open(with_token(url), cache_dir=cache) as repo:
        assert repo.head() == work.head()
    assert files_containing(cache, TOKEN) == []
    assert not legacy.exists()
    assert stat.S_IMODE(clone_path(url, cache).stat().st_mode) == 0o700


def test_only_http_credentials_are_split_off() -> None:
    clean, env = split_credentials("https://user:p%40ss@github.com/o/r.git")
    assert clean == "https://github.com/o/r.git"
    header = env[f"GIT_CONFIG_VALUE_{int(env['GIT_CONFIG_COUNT']) - 1}"]
    assert header == "Authorization: Basic " + base64.b64encode(b"user:p@ss").decode()
    assert split_credentials("ssh://git@github.com/o/r.git") == ("ssh://git@github.com/o/r.git", {})
    assert split_credentials("https://github.com/o/r.git") == ("https://github.com/o/r.git", {})
