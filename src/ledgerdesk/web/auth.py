"""Signing in and out, the second factor, and the one-time links that set a password."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from ledgerdesk.accounts.people import (
    SESSION_MAX_SECONDS,
    PeopleService,
    SignedIn,
    SignInRefused,
    StoredPassword,
    check_password,
    hash_password,
    needs_rehash,
    normal_email,
    password_matches,
)
from ledgerdesk.audit.service import Event
from ledgerdesk.db.models import User
from ledgerdesk.errors import LedgerdeskError, NotFound
from ledgerdesk.events.work import Actor, Origin, Work
from ledgerdesk.http.client_address import limit_key
from ledgerdesk.mail.resets import PasswordResets
from ledgerdesk.web.core import (
    SECURITY_HEADERS,
    SESSION_COOKIE,
    Redirect,
    Web,
    field_errors,
    text_field,
)
from ledgerdesk.web.pages import (
    Context,
    Errors,
    ForgotPage,
    Page,
    SetPasswordPage,
    SignInPage,
    VerifyPage,
)
from ledgerdesk.web.throttle import Throttled


def routes(web: Web) -> list[BaseRoute]:
    pages = AuthPages(web)
    return [
        Route("/signin", pages.sign_in, methods=["GET", "POST"]),
        Route("/signin/verify", pages.verify, methods=["GET", "POST"]),
        Route("/signout", pages.sign_out, methods=["POST"]),
        # Before /password/{token}, which would take "forgot" for a token.
        Route("/password/forgot", pages.forgot, methods=["GET", "POST"]),
        Route("/password/reset/{token}", pages.reset, methods=["GET", "POST"]),
        Route("/password/{token}", pages.set_password, methods=["GET", "POST"]),
    ]


class AuthPages:
    def __init__(self, web: Web) -> None:
        self.web = web
        self.runtime = web.runtime

    # -- sign in ------------------------------------------------------------------------

    async def sign_in(self, request: Request) -> Response:
        web = self.web
        target = _safe_next(request.query_params.get("next"))
        if request.method == "GET":
            return web.render(request, Page(SignInPage()))
        form = await web.form(request)
        web.check_anonymous_csrf(request, form)
        email = normal_email(text_field(form, "email"))
        password = text_field(form, "password")
        address = web.address(request)
        where = limit_key(web.client_ip(request))
        try:
            attempt = await web.throttle.attempt("signin", email, where)
        except Throttled as throttled:
            return self._throttled(
                request, lambda errors: SignInPage(email=email, errors=errors), throttled
            )
        runtime = self.runtime

        def stored() -> StoredPassword:
            with runtime.transaction(write=False) as (session, _):
                return PeopleService(session).stored_password_of_email(email)

        def begin(checked: StoredPassword, rehashed: str | None) -> SignedIn | None:
            now = runtime.clock.timestamp()
            try:
                with runtime.work(Actor.VISITOR, Origin("web", address)) as work:
                    return PeopleService.of(work).begin_session(checked, now=now, rehashed=rehashed)
            except SignInRefused:
                return None

        # The hash is verified (and remade, when its parameters are old) outside any
        # transaction, a few at a time: it costs 64 MiB and a tenth of a second.
        checked = await web.execution.blocking(stored)
        signed = None
        if await web.hashing(password_matches, checked.password_hash, password):
            rehashed = (
                await web.hashing(hash_password, password)
                if needs_rehash(checked.password_hash)
                else None
            )
            signed = await web.execution.blocking(begin, checked, rehashed)
        if signed is None:
            runtime.audit.record(
                _event(runtime.clock.timestamp(), "signin", "error", None, address)
            )
            return web.render(
                request,
                Page(SignInPage(email=email, errors={"_": SignInRefused.default_message}), 401),
            )
        await web.throttle.succeeded(attempt)
        if signed.needs_second_factor:
            destination = "/signin/verify" + (f"?next={quote(target, safe='/')}" if target else "")
        else:
            destination = target or ("/console" if signed.user.is_staff else "/account")
        response = RedirectResponse(destination, 303, headers=SECURITY_HEADERS)
        web.set_cookie(request, response, SESSION_COOKIE, signed.secret, SESSION_MAX_SECONDS)
        return response

    def _throttled(
        self, request: Request, page: Callable[[Errors], Context], throttled: Throttled
    ) -> Response:
        """The form's page again, saying when it may be tried again."""
        wait = (
            f"{throttled.retry_after} second(s)"
            if throttled.retry_after < 120
            else f"{throttled.minutes} minutes"
        )
        message = f"Too many tries from your address. Try again in {wait}."
        response = self.web.render(request, Page(page({"_": message}), 429))
        response.headers["retry-after"] = str(throttled.retry_after)
        return response

    async def verify(self, request: Request) -> Response:
        """The second step for staff with TOTP: a code from the phone or a recovery code."""
        web = self.web
        secret = request.cookies.get(SESSION_COOKIE, "")
        if request.method == "GET":
            return web.render(request, Page(VerifyPage()))
        form = await web.form(request)
        web.check_anonymous_csrf(request, form)
        code = text_field(form, "code").strip()
        runtime = self.runtime

        def pending() -> int | None:
            with runtime.transaction(write=False) as (session, _):
                return PeopleService(session).awaiting_second_factor(
                    secret, now=runtime.clock.timestamp()
                )

        user_id = await web.execution.blocking(pending) if secret else None
        if user_id is None:
            return web.message(
                request, "Sign in again", "Your sign-in has expired; sign in again.", 401
            )
        # Per account and address, like passwords: signing in again gives no new tries.
        try:
            attempt = await web.throttle.attempt(
                "totp", str(user_id), limit_key(web.client_ip(request))
            )
        except Throttled as throttled:
            return self._throttled(request, lambda errors: VerifyPage(errors=errors), throttled)

        def check() -> bool:
            now = runtime.clock.timestamp()
            with runtime.work(Actor.VISITOR, Origin("web", web.address(request))) as work:
                people = PeopleService.of(work)
                people.second_factor(secret, code, now=now)
                person = people.current(secret, now=now)
                return person is not None and person.is_staff

        try:
            staff = await web.execution.blocking(check)
        except NotFound as exc:
            return web.message(request, "Sign in again", exc.message, 401)
        except LedgerdeskError as exc:
            return web.render(request, Page(VerifyPage(errors=field_errors(exc)), 401))
        await web.throttle.succeeded(attempt)
        target = _safe_next(request.query_params.get("next"))
        return RedirectResponse(
            target or ("/console" if staff else "/account"), 303, headers=SECURITY_HEADERS
        )

    async def sign_out(self, request: Request) -> Response:
        web = self.web
        secret = request.cookies.get(SESSION_COOKIE, "")
        form = await web.form(request)

        def end() -> bool:
            now = self.runtime.clock.timestamp()
            with self.runtime.work(Actor.VISITOR, Origin("web", web.address(request))) as work:
                people = PeopleService.of(work)
                person = people.current(secret, now=now)
                if person is None:
                    return True
                if form.get("csrf") != person.csrf_token:
                    return False
                people.end_session(secret)
                return True

        if secret and not await web.execution.blocking(end):
            return web.message(request, "Form refused", "Reload the page and try again.", 403)
        response = web.redirect(request, Redirect("/signin", note="signed-out"))
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # -- one-time links -----------------------------------------------------------------

    async def set_password(self, request: Request) -> Response:
        """An invitation or reset link made by staff or the CLI (``PeopleService``)."""
        token = request.path_params["token"]
        runtime = self.runtime

        def who(work: Work) -> User:
            return PeopleService(work.session).link_user(token, now=runtime.clock.timestamp())

        def take(work: Work, password_hash: str) -> None:
            now = runtime.clock.timestamp()
            PeopleService.of(work).take_link(token, password_hash, now=now)

        return await self._password_link(request, who, take)

    async def _password_link(
        self,
        request: Request,
        who: Callable[[Work], User],
        take: Callable[[Work, str], object],
    ) -> Response:
        """A link's page that sets a password: ``who`` names its user (``NotFound``: no
        such link now), ``take`` sets the password (hashed outside any transaction) and
        uses the link up."""
        web = self.web
        runtime = self.runtime
        origin = Origin("web", web.address(request))

        def person() -> tuple[str, str | None]:
            with runtime.work(Actor.VISITOR, origin, write=False) as work:
                user = who(work)
                return user.name, user.email

        try:
            name, email = await web.execution.blocking(person)
        except NotFound as exc:
            return web.message(request, "Link not valid", exc.message, 404)
        page = SetPasswordPage(name=name, email=email)
        if request.method == "GET":
            return web.render(request, Page(page))
        form = await web.form(request)
        web.check_anonymous_csrf(request, form)
        password = text_field(form, "password")
        try:
            check_password(password, name=name, email=email)
        except LedgerdeskError as exc:
            return web.render(request, Page(replace(page, errors=field_errors(exc)), 400))
        if password != text_field(form, "password_again"):
            refused = replace(page, errors={"password_again": "does not match the password"})
            return web.render(request, Page(refused, 400))
        password_hash = await web.hashing(hash_password, password)

        def set_it() -> None:
            with runtime.work(Actor.VISITOR, origin) as work:
                take(work, password_hash)

        try:
            await web.execution.blocking(set_it)
        except NotFound as exc:
            return web.message(request, "Link not valid", exc.message, 404)
        return web.redirect(request, Redirect("/signin", note="password-set"))

    # -- a forgotten password ------------------------------------------------------------

    async def forgot(self, request: Request) -> Response:
        """Ask for a link by mail. The answer is the same whether an account has the
        address or not: the page tells nobody who is a customer."""
        web = self.web
        if request.method == "GET":
            return web.render(request, Page(ForgotPage()))
        form = await web.form(request)
        web.check_anonymous_csrf(request, form)
        email = normal_email(text_field(form, "email"))
        if not email or len(email) > 320 or "@" not in email:
            errors = {"email": "is not an email address"}
            return web.render(request, Page(ForgotPage(email=email, errors=errors), 400))
        address = web.address(request)
        try:
            await web.throttle.attempt("reset", email, limit_key(web.client_ip(request)))
        except Throttled as throttled:
            return self._throttled(
                request, lambda errors: ForgotPage(email=email, errors=errors), throttled
            )
        runtime = self.runtime

        def ask() -> None:
            with runtime.work(Actor.VISITOR, Origin("web", address)) as work:
                PasswordResets(work).ask(email)

        await web.execution.blocking(ask)
        return web.redirect(request, Redirect("/signin", note="reset-sent"))

    async def reset(self, request: Request) -> Response:
        """The mailed link of a forgotten password (``mail.resets``): a new one, once."""
        token = request.path_params["token"]
        return await self._password_link(
            request,
            lambda work: PasswordResets(work).user_of(token),
            lambda work, password_hash: PasswordResets(work).take(token, password_hash),
        )


def _event(now: int, action: str, outcome: str, user_id: int | None, address: str | None) -> Event:
    return Event(
        created_at=now,
        source="web",
        action=action,
        outcome=outcome,
        user_id=user_id,
        client_address=address,
    )


def _safe_next(raw: str | None) -> str | None:
    """Only a path on this site (never ``//host`` or a full URL) may follow sign-in."""
    if not raw or len(raw) > 512 or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return None
    if not (raw.startswith("/console") or raw.startswith("/account")):
        return None
    return raw
