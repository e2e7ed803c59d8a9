"""A synchronous client over the real app through `httpx.ASGITransport`, one event loop per client."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import FastAPI

from reconciler.api import ApiSettings


class Client:
    """A synchronous face on an `httpx.AsyncClient` over the ASGI app, one event loop per test."""

    def __init__(self, app: FastAPI, token: str | None, *, raise_app_exceptions: bool = True):
        self.app = app
        self.token = token
        self._runner = asyncio.Runner()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    def request(self, method: str, url: str, *, token: str | None = "", **kw: Any) -> httpx.Response:
        token = self.token if token == "" else token
        headers = dict(kw.pop("headers", {}) or {})
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        return self._runner.run(self._client.request(method, url, headers=headers, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()


SETTINGS = ApiSettings(repository="acme/flags", webhook_secret="It's a Secret to Everybody")


LAUNCHDARKLY_ENVELOPE = {"code", "message"}
ENVELOPE = {"type", "code", "detail", "attr"}


def error_message(response: httpx.Response) -> str:
    """What an error says: `detail` in our envelope, `message` in LaunchDarkly's (its routes)."""
    body = response.json()
    text = body["message"] if response.request.url.path.startswith("/api/v2/") else body["detail"]
    assert isinstance(text, str)
    return text
