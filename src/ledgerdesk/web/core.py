"""What every page of the console and the portal shares: templates, sessions, CSRF,
forms, uploads, the unit of work, and the answers for errors.

A page's request travels one way: ``Web.visit`` reads the session cookie, then runs the
page's function in a worker thread inside one ``Runtime.transaction`` (the same unit of
work the API's writes use) with the signed-in person, the CSRF check for forms, and the
database; the function returns a ``Page`` (template and values) or a redirect.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from importlib.resources import files
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlencode

from anyio import CapacityLimiter, to_thread
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ledgerdesk.accounts.people import CurrentSession, PeopleService
from ledgerdesk.accounts.service import IPAddress
from ledgerdesk.attachments.incoming import IncomingFile, IncomingWriter
from ledgerdesk.attachments.storage import BlobBatch
from ledgerdesk.audit.service import Event, record_now
from ledgerdesk.clock import day_of
from ledgerdesk.db.models import User
from ledgerdesk.db.prepared import Db, session_db
from ledgerdesk.errors import LedgerdeskError, NotFound, ServerBusy, invalid
from ledgerdesk.runtime import Runtime
from ledgerdesk.tickets.schemas import check_file_name, check_media_type
from ledgerdesk.tickets.service import MAX_ATTACHMENTS
from ledgerdesk.web import display
from ledgerdesk.web.throttle import SIGNIN_WINDOW, Throttle
from ledgerdesk.wire.client_address import client_address, is_trusted, parse_address
from ledgerdesk.wire.rate_limit import RateLimits

log = logging.getLogger("ledgerdesk.web")

SESSION_COOKIE = "ledgerdesk_session"
ANON_CSRF_COOKIE = "ledgerdesk_csrf"
# An address may fail this many times the per-account allowance (an office behind NAT).
ADDRESS_FACTOR = 4
# Password hashes computed at once, and how many more may wait their turn.
HASH_SLOTS = 2
HASH_QUEUE = 64
COPY_CHUNK = 1024 * 1024
# Text fields of one form, in all (files are streamed to disk and limited on their own).
MAX_FIELD_BYTES = 256 * 1024

Role = Literal["staff", "customer"]
T = TypeVar("T")

# What pages may load: only this server's own files; images also from data: (the QR code).
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


class SignInRequired(Exception):
    """No live session: the answer is a redirect to the sign-in page."""


class Refused(Exception):
    """A form the domain refused. The unit of work is rolled back (nothing of the form is
    kept) and ``page`` builds the form's page again, with the errors, in a fresh read."""

    def __init__(self, page: Callable[[Visit], Page]) -> None:
        super().__init__("refused")
        self.page = page


class Forbidden(Exception):
    """A form without its CSRF token, or a page of the other side (staff vs customer)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Page:
    """A template to render with its values, and the HTTP status."""

    template: str
    values: dict[str, Any] = field(default_factory=dict)
    status: int = 200


@dataclass
class Redirect:
    url: str
    flash: str | None = None


@dataclass
class Visit:
    """One page's unit of work: the person, their database session, and the time."""

    session: Session
    blobs: BlobBatch
    person: CurrentSession
    now: int
    today: date
    address: str | None
    source: str

    @cached_property
    def db(self) -> Db:
        return session_db(self.session)

    def user(self) -> User:
        user = self.session.get(User, self.person.user_id)
        assert user is not None  # the session row joined it a moment ago
        return user

    def audit(self, action: str, *, user_id: int | None, target_id: int | None) -> None:
        """Record this write in its own transaction, like the API and the admin CLI do."""
        record_now(
            self.session,
            Event(
                created_at=self.now,
                source=self.source,
                action=action,
                outcome="ok",
                user_id=user_id,
                target_id=target_id,
                client_address=self.address,
            ),
        )


class Web:
    """The parts built once per process and shared by every page."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.templates = Environment(
            loader=PackageLoader("ledgerdesk.web", "templates"),
            autoescape=select_autoescape(default=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.globals.update(display.GLOBALS)
        self.templates.filters.update(display.FILTERS)
        settings = runtime.settings
        # Sign-in and second-factor tries, counted in 15-minute windows (shared through
        # Redis when set), per account and address (see web.throttle).
        self.throttle = Throttle(
            RateLimits(
                per_key=1,
                auth_failures=settings.signin_failure_limit,
                redis_url=settings.redis_url,
                window=SIGNIN_WINDOW,
            ),
            free=settings.signin_failure_limit,
            per_address=settings.signin_failure_limit * ADDRESS_FACTOR,
        )
        # Password hashes (Argon2id: 64 MiB and a tenth of a second each) made at once.
        self.hashes = CapacityLimiter(HASH_SLOTS)
        self.static_dir = str(files("ledgerdesk.web") / "static")

    async def hashing(self, work: Callable[..., T], *args: Any) -> T:
        """Run a password hash in a worker thread, a few at a time, outside any
        transaction; 503 when too many wait (a flood of sign-ins)."""
        if self.hashes.statistics().tasks_waiting >= HASH_QUEUE:
            raise ServerBusy(2, "Too many sign-ins at once; try again in a moment.")
        return await to_thread.run_sync(work, *args, limiter=self.hashes)

    # -- answers ------------------------------------------------------------------------

    def render(
        self, request: Request, page: Page, *, person: CurrentSession | None = None
    ) -> Response:
        template = self.templates.get_template(page.template)
        csrf = person.csrf_token if person is not None else self.anonymous_csrf(request)
        flash = request.query_params.get("flash")
        html = template.render(
            request=request,
            person=person,
            csrf_token=csrf,
            flash=flash,
            path=request.url.path,
            **page.values,
        )
        response = HTMLResponse(html, page.status, headers=SECURITY_HEADERS)
        if person is None and request.cookies.get(ANON_CSRF_COOKIE) != csrf:
            self.set_cookie(request, response, ANON_CSRF_COOKIE, csrf, max_age=None)
        return response

    def redirect(self, request: Request, target: Redirect) -> Response:
        url = target.url
        if target.flash:
            url += ("&" if "?" in url else "?") + urlencode({"flash": target.flash})
        return RedirectResponse(url, 303, headers=SECURITY_HEADERS)

    def message(self, request: Request, title: str, text: str, status: int) -> Response:
        return self.render(request, Page("message.html", {"title": title, "text": text}, status))

    # -- cookies and CSRF ---------------------------------------------------------------

    def secure(self, request: Request) -> bool:
        """Whether the browser reached us over TLS: directly, or through a trusted proxy
        that says so (X-Forwarded-Proto from an address in LEDGERDESK_TRUSTED_PROXIES)."""
        if request.url.scheme == "https":
            return True
        peer = parse_address(request.client.host) if request.client else None
        if peer is None or not is_trusted(peer, self.runtime.settings.trusted_proxies):
            return False
        forwarded = request.headers.get("x-forwarded-proto", "")
        return forwarded.split(",")[-1].strip().lower() == "https"

    def set_cookie(
        self, request: Request, response: Response, name: str, value: str, max_age: int | None
    ) -> None:
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure(request),
        )

    def anonymous_csrf(self, request: Request) -> str:
        """The token of forms shown before sign-in: a random cookie the form repeats."""
        current = request.cookies.get(ANON_CSRF_COOKIE, "")
        return current if len(current) == 43 else secrets.token_urlsafe(32)

    def check_anonymous_csrf(self, request: Request, form: FormData) -> None:
        expected = request.cookies.get(ANON_CSRF_COOKIE, "")
        _check_token(expected, form.get("csrf"))

    # -- the person ---------------------------------------------------------------------

    def client_ip(self, request: Request) -> IPAddress | None:
        """The person's address, X-Forwarded-For believed from trusted proxies only."""
        peer = request.client.host if request.client else None
        return client_address(
            peer, request.headers.get("x-forwarded-for"), self.runtime.settings.trusted_proxies
        )

    def address(self, request: Request) -> str | None:
        found = self.client_ip(request)
        return None if found is None else str(found)

    async def signed_in(self, request: Request, role: Role) -> CurrentSession | None:
        """The verified person of ``role`` behind the session cookie, or None; read
        before a form's body is, so that nothing a visitor sends is read (or spooled to
        disk) unless they are signed in, and before a password is hashed for them."""
        secret = request.cookies.get(SESSION_COOKIE)
        if not secret:
            return None
        runtime = self.runtime

        def read() -> CurrentSession | None:
            with runtime.transaction(write=False) as (session, _):
                return PeopleService(session).current(secret, now=runtime.clock.timestamp())

        person = await to_thread.run_sync(read)
        if person is None or not person.verified or (role == "staff") != person.is_staff:
            return None
        return person

    async def visit(
        self,
        request: Request,
        role: Role,
        work: Callable[[Visit], Page | Redirect | Response],
        *,
        form: FormData | None = None,
        write: bool = False,
    ) -> Response:
        """Run a page for the signed-in person of ``role`` in one unit of work.

        Forms (``form`` given) must carry the session's CSRF token. A person of the other
        role is sent to their own side; no session at all goes to the sign-in page.
        """
        secret = request.cookies.get(SESSION_COOKIE)
        if not secret:
            return self._to_sign_in(request)
        runtime = self.runtime
        address = self.address(request)

        def run() -> tuple[CurrentSession | None, Page | Redirect | Response | Exception]:
            now = runtime.clock.timestamp()
            person: CurrentSession | None = None
            try:
                with runtime.transaction(write=write) as (session, blobs):
                    person = PeopleService(session).current(secret, now=now)
                    if person is None or not person.verified:
                        return None, SignInRequired()
                    if (role == "staff") != person.is_staff:
                        return person, Forbidden("wrong side")
                    if form is not None:
                        _check_token(person.csrf_token, form.get("csrf"))
                    return person, work(self._visit(session, blobs, person, now, address, role))
            except Refused as refused:  # rolled back: nothing of the form was kept
                assert person is not None
                with runtime.transaction(write=False) as (session, blobs):
                    visit = self._visit(session, blobs, person, now, address, role)
                    return person, refused.page(visit)
            except (Forbidden, LedgerdeskError) as exc:
                return person, exc

        person, outcome = await to_thread.run_sync(run)
        if person is not None and PeopleService.needs_touch(person, self.runtime.clock.timestamp()):
            await to_thread.run_sync(self._touch, person)
        if isinstance(outcome, SignInRequired):
            return self._to_sign_in(request)
        if isinstance(outcome, Forbidden):
            assert person is not None
            if outcome.message == "wrong side":
                return self.redirect(
                    request, Redirect("/console" if person.is_staff else "/account")
                )
            return self.render(
                request,
                Page("message.html", {"title": "Form refused", "text": outcome.message}, 403),
                person=person,
            )
        if isinstance(outcome, LedgerdeskError):
            title = "Not found" if isinstance(outcome, NotFound) else "That did not work"
            return self.render(
                request,
                Page(
                    "message.html", {"title": title, "text": outcome.message}, outcome.http_status
                ),
                person=person,
            )
        if isinstance(outcome, Redirect):
            return self.redirect(request, outcome)
        if isinstance(outcome, Response):
            return outcome
        assert isinstance(outcome, Page)
        return self.render(request, outcome, person=person)

    def _visit(
        self,
        session: Session,
        blobs: BlobBatch,
        person: CurrentSession,
        now: int,
        address: str | None,
        role: Role,
    ) -> Visit:
        return Visit(
            session=session,
            blobs=blobs,
            person=person,
            now=now,
            today=day_of(now, self.runtime.settings.timezone),
            address=address,
            source="console" if role == "staff" else "portal",
        )

    def _touch(self, person: CurrentSession) -> None:
        with self.runtime.transaction(write=True) as (session, _):
            PeopleService(session).touch(person.token_hash, now=self.runtime.clock.timestamp())

    def _to_sign_in(self, request: Request) -> Response:
        target = request.url.path
        if request.method == "GET" and request.url.query:
            target += "?" + request.url.query
        return RedirectResponse(f"/signin?next={quote(target, safe='')}", 303)

    # -- forms --------------------------------------------------------------------------

    async def form(self, request: Request, *, files: bool = False) -> FormData:
        """The posted form, with bounded fields; files (when allowed) spool to disk."""
        length = request.headers.get("content-length")
        limit = self.runtime.settings.max_body_bytes
        if length is not None and length.isdigit() and int(length) > limit:
            raise BadForm(f"The form is larger than {limit} bytes.", 413)
        try:
            return await request.form(
                max_files=MAX_ATTACHMENTS if files else 0,
                max_fields=100,
                max_part_size=MAX_FIELD_BYTES,
            )
        except HTTPException as exc:  # python-multipart's limits and parse errors
            raise BadForm(f"The form could not be read: {exc.detail}", 400) from None

    async def refused(self, request: Request, exc: Exception) -> Response:
        """The application's answer to ``BadForm`` and to ``Forbidden`` (a missing or
        stale CSRF token on a form sent before sign-in)."""
        if isinstance(exc, BadForm):
            return self.message(request, "Form refused", exc.message, exc.status)
        assert isinstance(exc, Forbidden)
        return self.message(request, "Form refused", exc.message, 403)

    async def visit_with_files(
        self,
        request: Request,
        role: Role,
        form: FormData,
        work: Callable[[Visit, list[IncomingFile]], Page | Redirect],
        again: Callable[[Visit, dict[str, str]], Page],
    ) -> Response:
        """A writing ``visit`` for a form with files (its ``files`` inputs): the files are
        written and hashed before the transaction begins and removed when it ends; a
        file the form cannot take shows the form ``again`` with the error."""
        uploads = [u for u in form.getlist("files") if isinstance(u, UploadFile)]
        files: list[IncomingFile] = []
        try:
            try:
                files = await to_thread.run_sync(self.incoming, uploads)
            except LedgerdeskError as exc:
                errors = field_errors(exc)
                return await self.visit(request, role, lambda v: again(v, errors), form=form)
            return await self.visit(
                request, role, lambda visit: work(visit, files), form=form, write=True
            )
        finally:
            for incoming in files:
                incoming.discard()
            await form.close()

    def incoming(self, uploads: Sequence[UploadFile]) -> list[IncomingFile]:
        """Uploaded files as the domain takes them (written, hashed, fsynced); call in a
        worker thread. Empty file inputs (nothing chosen) are skipped."""
        limit = self.runtime.settings.max_attachment_bytes
        done: list[IncomingFile] = []
        try:
            for upload in uploads:
                name = upload.filename or ""
                if not name and not upload.size:
                    continue
                problem = check_file_name(name)
                if problem:
                    raise invalid("attachments", f"file name {problem}")
                content_type = (upload.content_type or "application/octet-stream").strip()
                if check_media_type(content_type):
                    content_type = "application/octet-stream"
                writer = IncomingWriter(self.runtime.incoming_dir, limit, name)
                try:
                    upload.file.seek(0)
                    while chunk := upload.file.read(COPY_CHUNK):
                        writer.write(chunk)
                    done.append(writer.finish(name, content_type))
                except BaseException:
                    writer.discard()
                    raise
        except BaseException:
            for incoming in done:
                incoming.discard()
            raise
        return done


class BadForm(Exception):
    """A form that cannot be read (too large, too many files or fields, malformed);
    answered by the application's handler for it with a page saying so."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _check_token(expected: str, given: object) -> None:
    if (
        not expected
        or not isinstance(given, str)
        or not hmac.compare_digest(expected.encode(), given.encode())
    ):
        raise Forbidden(
            "This form was sent without its security token (or an old one). "
            "Reload the page and try again."
        )


def field_errors(exc: LedgerdeskError) -> dict[str, str]:
    """A refused form's messages by field; ``_`` holds a message about no one field."""
    if exc.errors:
        return {error.property: error.message for error in exc.errors}
    return {"_": exc.message}


def path_id(request: Request, name: str) -> int:
    """An id from the path (routes match digits only); one too large for any row is 0,
    which names no row, so it is a plain 404 rather than a database error."""
    value = int(request.path_params[name])
    return value if value < 2**63 else 0


def text_field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
