"""The dashboard's routes under `/ui/`: sign-in and sign-out, and one GET per page.

Who may see what is decided by the API's own gate (`Gate.open`): the same tokens, scopes and
environment restrictions, answered as pages (403 names the scope, 404 is the same for an
environment that does not exist and one the token may not read). A page's content is
rendered at most once per store version and caller, like the API's answers; only the frame
around it (who is signed in, the sign-out form's field) is rendered per request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.security import HTTPAuthorizationCredentials
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from reconciler.api.auth import Access, Caller, Credentials, TokenDigest, credentials_digest
from reconciler.api.context import ApiContext
from reconciler.api.errors import ApiError
from reconciler.api.ops import StatusProvider
from reconciler.api.ui import pages
from reconciler.api.ui.pages import ChangeFilters, Page, Pager, UiContext
from reconciler.api.ui.render import FAVICON, STYLESHEET, layout, render
from reconciler.api.ui.session import (
    COOKIE_PATH,
    CSRF_COOKIE,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    SESSION_SECONDS,
    SessionKeys,
    new_nonce,
    safe_next,
    same_site_post,
    valid_nonce,
)
from reconciler.errors import StoreError, mask_password
from reconciler.store.tokens import token_hash

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
MAX_FORM_BYTES = 16 * 1024
MAX_FILTER = 400
SIGNED_OUT = "Sign in with a reconciler token (`reconciler token create`)."
SESSION_ENDED = "Your session has ended (the token was revoked, or is unknown): sign in again."
FORGED = "This form did not come from this dashboard: reload the page and send it again."


class Dashboard:
    """The dashboard over one API context: session keys, and how a request becomes a page."""

    def __init__(self, ctx: ApiContext, status_provider: StatusProvider | None, clock: Clock | None = None):
        self.ctx = ctx
        self.ui = UiContext(ctx, status_provider) if clock is None else UiContext(ctx, status_provider, clock)
        self.keys = SessionKeys.create(ctx.settings.session_secret)
        self._verified: tuple[int, tuple[bool, int]] | None = None

    # --- who is asking ----------------------------------------------------------------------

    def credentials(self, request: Request) -> tuple[Credentials | None, bool]:
        """The bearer header (an authenticating proxy's), else the session cookie's token hash;
        and whether it came from the session."""
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return HTTPAuthorizationCredentials(scheme="Bearer", credentials=token.strip()), False
            return None, False
        digest = self.keys.token_digest(request.cookies.get(SESSION_COOKIE))
        return (TokenDigest(digest), True) if digest else (None, False)

    def secure(self, request: Request) -> bool:
        public = self.ctx.settings.public_base_url or ""
        return request.url.scheme == "https" or public.startswith("https://")

    # --- answers ----------------------------------------------------------------------------

    def respond(
        self,
        request: Request,
        body: str,
        status: int = 200,
        *,
        nonce: str | None = None,
        end_session: bool = False,
    ) -> Response:
        response = HTMLResponse(body, status_code=status, headers=SECURITY_HEADERS)
        if nonce is not None:
            response.set_cookie(
                CSRF_COOKIE,
                nonce,
                path=COOKIE_PATH,
                httponly=True,
                samesite="strict",
                secure=self.secure(request),
            )
        if end_session:
            self.clear_session(request, response)
        return response

    def clear_session(self, request: Request, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=self.secure(request)
        )

    def nonce(self, request: Request) -> tuple[str, bool]:
        """The browser's CSRF nonce, and whether it is new (and so must be set)."""
        nonce = request.cookies.get(CSRF_COOKIE)
        return (nonce, False) if nonce is not None and valid_nonce(nonce) else (new_nonce(), True)

    def sign_in_page(
        self, request: Request, *, message: str, status: int, target: str = "/ui/", end_session: bool = False
    ) -> Response:
        nonce, new = self.nonce(request)
        main = render(
            "sign_in.html",
            {"message": message, "next": safe_next(target), "form_token": self.keys.form_token(nonce)},
        )
        body = layout("Sign in", main, user=None, form_token=None, section="sign-in", nav=False)
        return self.respond(request, body, status, nonce=nonce if new else None, end_session=end_session)

    def error_page(self, request: Request, status: int, message: str, user: str | None = None) -> Response:
        main = render("error.html", {"status": status, "message": message})
        return self.respond(
            request,
            layout(f"Error {status}", main, user=user, form_token=None, section="", nav=False),
            status,
        )

    def page(self, request: Request, section: str, title: str, build: Callable[[Access], Page]) -> Response:
        """A page for the caller, or the sign-in form, or an error page saying why not."""
        credentials, from_session = self.credentials(request)
        nonce, new = self.nonce(request)
        try:
            with self.ctx.gate.open(credentials, None) as access:
                main = self.main(request, access, build)
                user = access.caller.login
        except ApiError as err:
            return self.refused(request, err, credentials, from_session)
        except StoreError as err:
            log.error("dashboard: the store does not answer: %s", mask_password(str(err)))
            return self.error_page(request, 503, "The store does not answer; try again in a moment.")
        token = self.keys.form_token(nonce) if from_session else None
        body = layout(title, main, user=user, form_token=token, section=section)
        return self.respond(request, body, nonce=nonce if new else None)

    def cached(self, request: Request, section: str, title: str) -> Response | None:
        """The page from the cache when answering needs no store read at all (the token and
        the store version are still trusted, the content was rendered for such a caller), so
        it is answered on the event loop; None sends the request to a worker thread."""
        credentials, from_session = self.credentials(request)
        gate = self.ctx.gate
        caller, version = gate.cached_caller(credentials_digest(credentials)), gate.cached_version()
        if caller is None or version is None:
            return None
        body = self.ctx.responses.get(page_key(request, caller, version))
        if body is None:
            return None
        nonce, new = self.nonce(request)
        token = self.keys.form_token(nonce) if from_session else None
        main = Markup(body.decode())  # noqa: S704 - rendered by our autoescaping templates
        page = layout(title, main, user=caller.login, form_token=token, section=section)
        return self.respond(request, page, nonce=nonce if new else None)

    def main(self, request: Request, access: Access, build: Callable[[Access], Page]) -> Markup:
        key = page_key(request, access.caller, access.version)
        cached = self.ctx.responses.get(key)
        if cached is not None:
            return Markup(cached.decode())  # noqa: S704 - rendered by our autoescaping templates
        template, values = build(access)
        main = render(template, values)
        self.ctx.responses.put(key, str(main).encode())
        return main

    def refused(
        self, request: Request, err: ApiError, credentials: Credentials | None, from_session: bool
    ) -> Response:
        if err.status != 401:
            return self.error_page(request, err.status, err.detail)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if from_session:
            return self.sign_in_page(
                request, message=SESSION_ENDED, status=401, target=target, end_session=True
            )
        if credentials is not None:  # a bearer header that does not authenticate
            return self.error_page(request, 401, err.detail)
        if request.url.path == "/ui/":
            return self.sign_in_page(request, message=SIGNED_OUT, status=200)
        location = "/ui/sign-in?" + urlencode({"next": target})
        return RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)

    # --- forms ------------------------------------------------------------------------------

    async def form(self, request: Request) -> dict[str, str] | None:
        """The posted fields, or None when the post may be forged (other site, missing field)."""
        headers = request.headers
        if not same_site_post(
            headers.get("origin"), headers.get("sec-fetch-site"), headers.get("host"), request.url.scheme
        ):
            return None
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return None
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), max_num_fields=10))
        if not self.keys.form_allowed(request.cookies.get(CSRF_COOKIE), fields.get("csrf")):
            return None
        return fields

    def sign_in(self, request: Request, fields: dict[str, str]) -> Response:
        token = fields.get("token", "").strip()
        target = safe_next(fields.get("next"))
        if not token or len(token) > 512:
            return self.sign_in_page(request, message="Paste a reconciler token.", status=400, target=target)
        credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
        try:
            with self.ctx.gate.open(credentials, None):
                pass
        except ApiError as err:
            return self.sign_in_page(
                request, message=f"Not signed in: {err.detail}.", status=err.status, target=target
            )
        response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(
            SESSION_COOKIE,
            self.keys.issue(token_hash(token)),
            max_age=SESSION_SECONDS,
            path=COOKIE_PATH,
            httponly=True,
            samesite="strict",
            secure=self.secure(request),
        )
        return response

    def guarded(
        self, request: Request, section: str, title: str, build: Callable[[], Callable[[Access], Page]]
    ) -> Response:
        """Parameters are checked before the page is built; a bad one is a 400 page."""
        try:
            builder = build()
        except ApiError as err:
            return self.error_page(request, err.status, err.detail)
        return self.page(request, section, title, builder)

    async def show(
        self, request: Request, section: str, title: str, build: Callable[[], Callable[[Access], Page]]
    ) -> Response:
        """A cached page on the event loop, anything else in a worker thread (a hung database
        must never stop the loop)."""
        answer = self.cached(request, section, title)
        if answer is not None:
            return answer
        return await run_in_threadpool(self.guarded, request, section, title, build)

    def verify_chain(self) -> tuple[bool, int]:
        """The audit chain's state, walked at most once per store version."""
        version = self.ctx.store.store_version()
        cached = self._verified
        if cached is None or cached[0] != version:
            result = self.ctx.store.verify_audit()
            cached = (version, (result.intact, result.checked))
            self._verified = cached
        return cached[1]


def page_key(request: Request, caller: Caller, version: int) -> tuple[Any, ...]:
    """What a page's content depends on: the address, who asks (as the gate sees them) and
    the store version."""
    scopes = caller.token.scopes if caller.token else None
    return ("ui", request.url.path, request.url.query, caller.login, caller.environment_ids, scopes, version)


def pager(request: Request, page: str, *params: tuple[str, str]) -> Pager:
    return Pager(request.url.path, params, page_number(page))


def page_number(value: str) -> int:
    if value.isascii() and value.isdigit() and len(value) <= 7 and 1 <= int(value) <= pages.MAX_PAGE:
        return int(value)
    raise ApiError(400, f"page {value[:20]!r} is not a page number: use 1 to {pages.MAX_PAGE}", attr="page")


def text(value: str, what: str) -> str:
    if len(value) > MAX_FILTER or "\x00" in value:
        raise ApiError(400, f"the {what} filter is too long or holds a NUL character", attr=what)
    return value.strip()


def router(
    ctx: ApiContext, status_provider: StatusProvider | None = None, clock: Clock | None = None
) -> APIRouter:
    """The dashboard's routes; `clock` is what "now" is for expiry and "recent" (tests pin it)."""
    board = Dashboard(ctx, status_provider, clock)
    ui = board.ui
    api = APIRouter(prefix="/ui", include_in_schema=False)

    @api.get("")
    def root() -> Response:
        return RedirectResponse("/ui/", status_code=308)

    @api.get("/")
    async def overview(request: Request) -> Response:
        return await board.show(request, "overview", "Overview", lambda: lambda a: pages.overview(ui, a))

    @api.get("/sign-in")
    def sign_in_form(request: Request, next: str = "/ui/") -> Response:
        return board.sign_in_page(request, message=SIGNED_OUT, status=200, target=next)

    @api.post("/sign-in")
    async def sign_in(request: Request) -> Response:
        fields = await board.form(request)
        if fields is None:
            return board.sign_in_page(request, message=FORGED, status=403)
        return await run_in_threadpool(board.sign_in, request, fields)

    @api.post("/sign-out")
    async def sign_out(request: Request) -> Response:
        if await board.form(request) is None:
            return board.error_page(request, 403, FORGED)
        response = RedirectResponse("/ui/", status_code=303, headers=SECURITY_HEADERS)
        board.clear_session(request, response)
        return response

    @api.get("/pulls")
    async def pulls(request: Request, page: str = "1", waiting_on: str = "") -> Response:
        def build() -> Callable[[Access], Page]:
            login = text(waiting_on, "waiting_on")
            paging = pager(request, page, *((("waiting_on", login),) if login else ()))
            return lambda a: pages.pulls(ui, a, paging, login or None)

        return await board.show(request, "pulls", "Pull requests", build)

    @api.get("/pulls/{number}")
    async def pull(request: Request, number: str) -> Response:
        def build() -> Callable[[Access], Page]:
            if not (number.isascii() and number.isdigit() and len(number) <= 9):
                raise ApiError(404, f"no pull request {number[:20]!r}")
            return lambda a: pages.pull(ui, a, int(number))

        return await board.show(request, "pulls", f"Pull request #{number[:20]}", build)

    @api.get("/changes")
    async def changes(
        request: Request,
        page: str = "1",
        state: str = "",
        environment: str = "",
        flag: str = "",
        requester: str = "",
        since: str = "",
        until: str = "",
    ) -> Response:
        def build() -> Callable[[Access], Page]:
            values = {"state": state, "environment": environment, "flag": flag, "requester": requester}
            filters = ChangeFilters(
                **{k: text(v, k) for k, v in values.items()},
                since=text(since, "since"),
                until=text(until, "until"),
            )
            paging = pager(request, page, *filters.params())
            return lambda a: pages.changes(ui, a, paging, filters)

        return await board.show(request, "changes", "Change requests", build)

    @api.get("/changes/{change_request_id}")
    async def change(request: Request, change_request_id: str) -> Response:
        return await board.show(
            request, "changes", "Change request", lambda: lambda a: pages.change(ui, a, change_request_id)
        )

    @api.get("/flags")
    async def flag_environments(request: Request) -> Response:
        return await board.show(request, "flags", "Flags", lambda: lambda a: pages.flag_environments(ui, a))

    @api.get("/flags/{environment}")
    async def flags(request: Request, environment: str, page: str = "1") -> Response:
        def build() -> Callable[[Access], Page]:
            paging = pager(request, page)
            return lambda a: pages.flags(ui, a, paging, environment)

        return await board.show(request, "flags", f"Flags in {environment[:100]}", build)

    @api.get("/flags/{environment}/{key}")
    async def flag(request: Request, environment: str, key: str, page: str = "1") -> Response:
        def build() -> Callable[[Access], Page]:
            paging = pager(request, page)
            return lambda a: pages.flag(ui, a, paging, environment, key)

        return await board.show(request, "flags", f"Flag {key[:100]}", build)

    @api.get("/rules")
    async def rules(request: Request, page: str = "1") -> Response:
        def build() -> Callable[[Access], Page]:
            paging = pager(request, page)
            return lambda a: pages.rules(ui, a, paging, board.verify_chain)

        return await board.show(request, "rules", "Rules", build)

    static = {**SECURITY_HEADERS, "Cache-Control": "public, max-age=3600"}

    @api.get("/static/style.css")
    async def stylesheet() -> Response:
        return Response(STYLESHEET, media_type="text/css", headers=static)

    @api.get("/static/favicon.svg")
    async def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml", headers=static)

    return api


__all__ = ["Dashboard", "router"]
