"""Text that people read on GitHub: cut with an ellipsis, Markdown table cells, GitHub's limits.

GitHub cuts a commit-status description at 140 characters and refuses a comment longer than
65,536; everything that writes either keeps to these numbers.
"""

from __future__ import annotations

MAX_STATUS_DESCRIPTION = 140  # GitHub truncates longer commit-status descriptions
MAX_COMMENT_CHARS = 65_536  # GitHub refuses longer issue comments


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending in `…` when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table_cell(text: str) -> str:
    """`text` safe inside one Markdown table cell: pipes escaped, newlines made spaces."""
    return text.replace("|", "\\|").replace("\n", " ")
