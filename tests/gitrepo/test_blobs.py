"""Reading blobs by id: a few through git's long-lived reader, many in one exchange, the same bytes."""

from __future__ import annotations

import git

from reconciler.gitrepo.blobs import BATCH_FROM, read_blobs
from tests.support.gitutil import GitRepo


def test_few_and_many_ids_read_the_same_bytes(git_repo: GitRepo) -> None:
    for i in range(BATCH_FROM):
        git_repo.write(f"changes/{i:02}.yaml", f"n: {i}\n")
    git_repo.write("changes/empty.yaml", "")
    git_repo.commit("Files")
    repo = git.Repo(git_repo.path)
    try:
        blobs = [b.hexsha for b in repo.head.commit.tree.traverse() if isinstance(b, git.Blob)]
        tree = git_repo.git("rev-parse", "HEAD^{tree}")
        ids = [*blobs, tree, "0" * 40]
        assert len(ids) > BATCH_FROM
        many = read_blobs(repo, ids)
        few = {key: read_blobs(repo, [key])[key] for key in ids}
        assert many == few
        assert many[tree] is None and many["0" * 40] is None
        assert sorted(many[b] or b"" for b in blobs)[:2] == [b"", b"n: 0\n"]
        assert read_blobs(repo, ids, limit=2)[blobs[-1]] == read_blobs(repo, blobs[-1:], limit=2)[blobs[-1]]
        assert all(len(data or b"") <= 2 for data in read_blobs(repo, ids, limit=2).values())
    finally:
        repo.close()
