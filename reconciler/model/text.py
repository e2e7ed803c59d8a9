"""Text that people read on GitHub: cut with an ellipsis, Markdown table cells, GitHub's limits.

GitHub cuts a commit-status description at 140 characters and refuses a comment longer than
65,536; everything that writes either keeps to these numbers.
"""

from __future__ import annotations

import re

MAX_STATUS_DESCRIPTION = 140  # GitHub truncates longer commit-status descriptions
MAX_COMMENT_CHARS = 65_536  # GitHub refuses longer issue comments


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending in `…` when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def table_cell(text: str) -> str:
    """`text` safe inside one Markdown table cell: pipes escaped, newlines made spaces."""
    return text.replace("|", "\\|").replace("\n", " ")


# Characters that make Markdown markup inside a line (emphasis, links and images, HTML, code,
# table cells, strike-through, entities): each is escaped with a backslash, as CommonMark allows
# before any punctuation. Without `[` no link or image can form, so `(`, `)` and `!` stay.
_MARKUP = re.compile(r"([\\`*_\[\]<>|~&])")


def markdown_text(text: str) -> str:
    """`text` shown as itself in a Markdown line or table cell, whoever wrote it.

    Markup characters are escaped, line breaks become spaces, and what GitHub would turn into a
    notification or a link without markup (`@login`, `https://…`, `www.…`) gets a zero-width
    space, so a login, a file name or a flag value can neither ping people nor pose as a link.
    """
    text = _MARKUP.sub(r"\\\1", " ".join(text.splitlines()))
    return text.replace("@", "@\u200b").replace("://", ":\u200b//").replace("www.", "www\u200b.")


def markdown_code(text: str, *, table: bool = False) -> str:
    """`text` as inline code (nothing inside is markup), on one line; `table`: inside a table cell."""
    body = " ".join(text.splitlines()).replace("`", "'")
    return f"`{body.replace('|', chr(92) + '|') if table else body}`"
