"""The dashboard's templates: one Jinja environment with autoescaping on for every template.

Everything a page shows comes from Git or the store (flag keys, logins, descriptions, commit
messages, error text) and may hold markup, so every value is escaped; templates never mark
a value safe. Links are checked to be http(s) before they become an `href`.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

HERE = Path(__file__).parent
STYLESHEET = (HERE / "static" / "style.css").read_bytes()
FAVICON = (HERE / "static" / "favicon.svg").read_bytes()

ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every template, whatever its file name
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def when(at: datetime | str | None) -> str:
    if at is None:
        return "—"
    if isinstance(at, str):
        return at.replace("T", " ").replace("Z", " UTC")
    return at.strftime("%Y-%m-%d %H:%M UTC")


def short(sha: str | None) -> str:
    return (sha or "")[:12]


def web_link(url: str | None) -> str | None:
    """The address if it is an http(s) one (so no `javascript:` ever becomes a link)."""
    if isinstance(url, str) and url.startswith(("https://", "http://")):
        return url
    return None


ENV.filters.update(when=when, short=short, web_link=web_link)


def render(template: str, values: dict[str, Any]) -> Markup:
    """A page's main content."""
    return Markup(ENV.get_template(template).render(**values))  # noqa: S704 - autoescaped output


def layout(
    title: str, main: Markup, *, user: str | None, form_token: str | None, section: str, nav: bool = True
) -> str:
    """The whole page around its content: navigation (for a reader), who reads, sign-out."""
    return ENV.get_template("layout.html").render(
        title=title, main=main, user=user, form_token=form_token, section=section, nav=nav
    )
