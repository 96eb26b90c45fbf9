"""A person's own security page: change the password, the TOTP second factor; for staff,
which mail they get."""

from __future__ import annotations

from dataclasses import dataclass

import segno
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ledgerdesk.accounts.people import (
    PeopleService,
    StoredPassword,
    check_password,
    hash_password,
    password_matches,
)
from ledgerdesk.accounts.service import AccountService
from ledgerdesk.errors import LedgerdeskError, invalid
from ledgerdesk.web.core import (
    Redirect,
    Refused,
    Role,
    Visit,
    Web,
    field_errors,
    text_field,
)
from ledgerdesk.web.pages import Page, SecurityPage


def routes(web: Web, role: Role) -> list[BaseRoute]:
    pages = SecurityPages(web, role)
    return [Route("/security", pages.security, methods=["GET", "POST"])]


class SecurityPages:
    def __init__(self, web: Web, role: Role) -> None:
        self.web = web
        self.role: Role = role

    def page(
        self,
        visit: Visit,
        *,
        errors: dict[str, str] | None = None,
        enrolment_secret: str | None = None,
    ) -> Page:
        recovery_codes = visit.once.get("recovery_codes")
        has_totp = visit.user().totp_secret is not None
        secret = qr = None
        if not has_totp and recovery_codes is None:
            people = PeopleService(visit.session)
            enrolment = people.totp_enrolment(visit.person.user_id)
            secret = enrolment_secret or enrolment.secret
            uri = enrolment.uri.replace(enrolment.secret, secret)
            qr = segno.make(uri, error="m").svg_data_uri(scale=4)
        page = SecurityPage(
            staff=self.role == "staff",
            mail_notify=visit.user().mail_notify,
            has_totp=has_totp,
            recovery_codes=recovery_codes,
            enrolment_secret=secret,
            qr=qr,
            errors=errors or {},
        )
        return Page(page, 400 if errors else 200)

    async def security(self, request: Request) -> Response:
        web = self.web
        if request.method == "GET":
            return await web.visit(request, self.role, lambda visit: self.page(visit))
        form = await web.form(request, self.role)
        action = text_field(form, "action")
        checked = await self._check_password_first(request, action, form)

        def work(visit: Visit) -> Page | Redirect:
            people = PeopleService.of(visit.work)
            user_id = visit.person.user_id
            secret = text_field(form, "secret")
            try:
                if action == "password":
                    new = text_field(form, "new_password")
                    if new != text_field(form, "new_password_again"):
                        raise invalid("new_password_again", "does not match the new password")
                    if checked is None or not checked.right:
                        raise invalid("current_password", "is not your current password")
                    user = visit.user()
                    check_password(new, name=user.name, email=user.email)
                    assert checked.new_hash is not None
                    people.change_password(checked.stored, checked.new_hash)
                    # Every session ended, this one too: sign in with the new password.
                    return Redirect("/signin", note="password-changed")
                here = "/console/security" if self.role == "staff" else "/account/security"
                if action == "totp-enable":
                    codes = people.confirm_totp(
                        user_id, secret, text_field(form, "code").strip(), now=visit.now
                    )
                    # Shown once by the page this redirects to (a reload shows them no more).
                    return Redirect(
                        here,
                        flash="The second factor is on.",
                        once={"recovery_codes": codes},
                    )
                if action == "mail-notify" and self.role == "staff":
                    AccountService(visit.work).update_user(
                        user_id, mail_notify=text_field(form, "mail_notify")
                    )
                    return Redirect("/console/security", flash="Your mail settings are saved.")
                if action == "totp-disable":
                    if checked is None or not checked.right:
                        raise invalid("password", "is not your password")
                    people.disable_totp(checked.stored)
                    return Redirect(here, flash="Second factor turned off.")
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                raise Refused(
                    lambda again: self.page(again, errors=problems, enrolment_secret=secret or None)
                ) from None
            raise invalid("action", "is not something this page does")

        return await web.visit(request, self.role, work, form=form, write=True)

    async def _check_password_first(
        self, request: Request, action: str, form: FormData
    ) -> CheckedPassword | None:
        """For the forms that need the person's password: verify it (and hash the new
        one) before the form's transaction, outside any (see Web.hashing). None when
        the form is not one of them, or the visit will refuse it anyway."""
        if action not in ("password", "totp-disable"):
            return None
        web = self.web
        person = await web.signed_in(request, self.role)
        if person is None or form.get("csrf") != person.csrf_token:
            return None  # the visit sends them to sign in, or refuses the form
        runtime = web.runtime

        def stored() -> StoredPassword:
            with runtime.transaction(write=False) as (session, _):
                return PeopleService(session).stored_password(person.user_id)

        current = await web.execution.blocking(stored)
        given = text_field(form, "current_password" if action == "password" else "password")
        right = await web.hashing(password_matches, current.password_hash, given)
        new_hash = None
        new = text_field(form, "new_password")
        if action == "password" and right and new == text_field(form, "new_password_again"):
            try:
                check_password(new, name=person.name, email=person.email)
            except LedgerdeskError:
                pass  # refused in the visit, with the rest of the form's problems
            else:
                new_hash = await web.hashing(hash_password, new)
        return CheckedPassword(current, right, new_hash)


@dataclass(frozen=True)
class CheckedPassword:
    stored: StoredPassword
    right: bool
    new_hash: str | None
