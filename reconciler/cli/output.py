"""How the read commands print: tables for people, plain lines for pipes, JSON for scripts.

A command builds its view as blocks (`Fields`, `Table`) plus the JSON value scripts get, and
`emit` prints them in the format `--format` asks for. `auto` (the default) is `table` on a
terminal and `text` otherwise; `NO_COLOR` (https://no-color.org) leaves every escape sequence
out of tables (`FORCE_COLOR` puts colour into a table that is not on a terminal).

Everything shown comes from Git (file names, reasons, descriptions anyone can write in a pull
request), so no value is ever read as markup, and control characters (a terminal escape
sequence in a reason, say) are shown escaped instead of reaching the terminal.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Literal

import click

FORMATS = ("auto", "table", "text", "json")
Format = Literal["auto", "table", "text", "json"]

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="auto",
    show_default=True,
    help="table: aligned columns for people (auto on a terminal); text: plain tab-separated lines"
    " (auto when piped); json: for scripts.",
)

# C0 and C1 control characters and DEL; tabs and newlines too, since they would break a line
# of `text` output or a table cell.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(value: object) -> str:
    """`value` as one line of text a terminal shows as it is: controls written as `\\xNN`."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return when(value)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(value))


def when(at: datetime | None) -> str:
    """A UTC time as people read it: `2026-03-01 12:00Z`; empty for none."""
    return "" if at is None else at.strftime("%Y-%m-%d %H:%MZ")


def short(sha: str | None) -> str:
    """A commit as git shows it: its first 12 characters."""
    return (sha or "")[:12]


@dataclass(frozen=True)
class Fields:
    """Labelled values, one per line (`label: value`), under an optional title."""

    pairs: Sequence[tuple[str, object]]
    title: str = ""


@dataclass(frozen=True)
class Table:
    """Rows under column headings; `empty` is said instead when there are no rows."""

    columns: Sequence[str]
    rows: Sequence[Sequence[object]]
    title: str = ""
    empty: str = "none"
    # column index -> {cell value: rich style}, for tables on a terminal (a state in colour)
    styles: Mapping[int, Mapping[str, str]] = field(default_factory=dict)
    note: str = ""  # below the rows (more pages, say); on stderr in `text`, keeping stdout rows only
    # Columns only `text` prints (a full id, for scripts that cut it out); a table on a
    # terminal leaves them out to give the others room.
    text_only: frozenset[int] = frozenset()


Block = Fields | Table


def resolve(fmt: str, stream: IO[str] | None = None) -> Format:
    """`auto` becomes `table` on a terminal and `text` anywhere else."""
    if fmt == "auto":
        stream = stream or sys.stdout
        return "table" if stream.isatty() else "text"
    assert fmt in FORMATS
    return fmt  # type: ignore[return-value]


def emit(fmt: str, blocks: Sequence[Block], json_value: Any) -> None:
    """Print the view: `json_value` for `json`, else the blocks as tables or plain lines."""
    chosen = resolve(fmt)
    if chosen == "json":
        click.echo(json.dumps(json_value, indent=2, sort_keys=True, default=str))
    elif chosen == "text":
        click.echo("\n\n".join(_text(block) for block in blocks))
        for block in blocks:
            if isinstance(block, Table) and block.note:
                click.echo(printable(block.note), err=True)
    else:
        _rich(blocks)


def _text(block: Block) -> str:
    lines = [f"# {printable(block.title)}"] if block.title else []
    if isinstance(block, Fields):
        lines += [f"{label}: {printable(value)}" for label, value in block.pairs]
    elif block.rows:
        lines.append("\t".join(block.columns))
        lines += ["\t".join(printable(cell) for cell in row) for row in block.rows]
    else:
        lines.append(printable(block.empty))
    return "\n".join(lines)


def _rich(blocks: Sequence[Block]) -> None:
    # Imported here: only a terminal view pays for rich.
    from rich import box
    from rich.console import Console
    from rich.table import Table as RichTable
    from rich.text import Text

    plain = bool(os.environ.get("NO_COLOR"))  # no-color.org: set and not empty
    console = Console(
        file=sys.stdout,
        color_system=None if plain else "auto",  # not even bold or dim: no escape sequence at all
        highlight=False,
        emoji=False,
        soft_wrap=False,
    )
    for index, block in enumerate(blocks):
        if index:
            console.print()
        if block.title:
            console.print(Text(printable(block.title), style="bold"))
        if isinstance(block, Fields):
            grid = RichTable.grid(padding=(0, 2))
            grid.add_column(style="dim")
            grid.add_column(overflow="fold")
            for label, value in block.pairs:
                grid.add_row(Text(label), Text(printable(value)))
            console.print(grid)
        elif not block.rows:
            console.print(Text(printable(block.empty), style="dim"))
        else:
            table = RichTable(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
            shown = [i for i in range(len(block.columns)) if i not in block.text_only]
            for i in shown:
                table.add_column(block.columns[i], overflow="fold")
            for row in block.rows:
                table.add_row(*(_cell(Text, block, i, row[i]) for i in shown))
            console.print(table)
        if isinstance(block, Table) and block.note:
            console.print(Text(printable(block.note), style="dim"))


def _cell(text: Any, block: Table, index: int, value: object) -> Any:
    """A table cell: the value as plain text (never markup), styled by what it says."""
    return text(printable(value), style=block.styles.get(index, {}).get(str(value), ""))


STATE_STYLES = {
    "applied": "green",
    "approved": "cyan",
    "pending": "yellow",
    "failed": "red",
    "rejected": "red",
    "expired": "magenta",
}
