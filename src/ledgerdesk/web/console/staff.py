"""The console's staff: who works here (admins, second factor, signed in or not), and,
for admins, inviting a colleague (an invitation link shown once), disabling and enabling
one, giving and taking the admin role, a new link for a forgotten password. The last
enabled admin keeps the role and stays enabled. And the audit trail, for admins: every
change and every failed or replayed write or authentication, newest first."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from ledgerdesk.accounts.people import PeopleService, Purpose
from ledgerdesk.accounts.service import AccountReader, AccountService
from ledgerdesk.audit.trail import trail
from ledgerdesk.clock import moment_of
from ledgerdesk.db.models import User
from ledgerdesk.errors import LedgerdeskError, NotFound, invalid
from ledgerdesk.web.console.queue import int_param
from ledgerdesk.web.core import (
    Forbidden,
    Redirect,
    Refused,
    Visit,
    Web,
    field_errors,
    path_id,
    text_field,
)
from ledgerdesk.web.pages import AuditPage, Page, StaffPage

ACTIONS = ("disable", "enable", "admin", "not-admin", "invite", "reset")
DONE = {
    "disable": "disabled",
    "enable": "enabled",
    "admin": "made an admin",
    "not-admin": "no longer an admin",
}


def require_admin(visit: Visit) -> None:
    if not visit.user().is_admin:
        raise Forbidden("Only admins manage staff. Ask one of them.")


AUDIT_ROWS = 200


class StaffPages:
    def __init__(self, web: Web) -> None:
        self.web = web

    def _page(
        self,
        visit: Visit,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Page:
        return Page(
            StaffPage(
                staff=AccountReader(visit.session).staff(),
                admin=visit.user().is_admin,
                me=visit.person.user_id,
                link=visit.once.get("link"),
                values=values or {"name": "", "email": ""},
                errors=errors or {},
            ),
            400 if errors else 200,
        )

    async def staff(self, request: Request) -> Response:
        if request.method == "GET":
            return await self.web.visit(request, "staff", self._page)
        form = await self.web.form(request, "staff")
        values = {"name": text_field(form, "name"), "email": text_field(form, "email").strip()}
        admin = text_field(form, "admin") == "yes"
        site = self.web.runtime.settings.public_url

        def invite(visit: Visit) -> Redirect:
            require_admin(visit)
            try:
                if not values["email"]:
                    raise invalid("email", "is needed: staff sign in with it")
                made = AccountService(visit.work).create_user(
                    name=values["name"], email=values["email"], staff=True, admin=admin
                )
                secret = PeopleService.of(visit.work).issue_link(made.id, "invite", now=visit.now)
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                raise Refused(lambda again: self._page(again, problems, values)) from None
            return Redirect(
                "/console/staff",
                flash=f"{made.name} is invited: give them the link below (shown this once).",
                once={"link": f"{site}/password/{secret}"},
            )

        return await self.web.visit(request, "staff", invite, form=form, write=True)

    async def access(self, request: Request) -> Response:
        user_id = path_id(request, "user_id")
        form = await self.web.form(request, "staff")
        action = text_field(form, "action")
        site = self.web.runtime.settings.public_url

        def work(visit: Visit) -> Redirect:
            require_admin(visit)
            member = visit.session.get(User, user_id)
            if member is None or not member.is_staff:
                raise NotFound(f"Staff member {user_id} not found.")
            try:
                if action not in ACTIONS:
                    raise invalid("action", f"must be one of {', '.join(ACTIONS)}")
                people = PeopleService.of(visit.work)
                if action in ("disable", "enable"):
                    if action == "disable" and user_id == visit.person.user_id:
                        raise invalid("user", "is you: another admin disables you")
                    people.set_disabled(user_id, action == "disable", now=visit.now)
                elif action in ("admin", "not-admin"):
                    AccountService(visit.work).update_user(user_id, admin=action == "admin")
                else:
                    purpose: Purpose = "invite" if action == "invite" else "reset"
                    secret = people.issue_link(user_id, purpose, now=visit.now)
                    made = "Invitation" if action == "invite" else "Password reset"
                    return Redirect(
                        "/console/staff",
                        flash=f"{made} link for {member.name} made; it is shown below this once.",
                        once={"link": f"{site}/password/{secret}"},
                    )
            except LedgerdeskError as exc:
                if isinstance(exc, NotFound):
                    raise
                problems = field_errors(exc)
                raise Refused(lambda again: self._page(again, problems)) from None
            return Redirect("/console/staff", flash=f"{member.name} is {DONE[action]}.")

        return await self.web.visit(request, "staff", work, form=form, write=True)

    async def audit(self, request: Request) -> Response:
        params = request.query_params
        errors: dict[str, str] = {}
        user_id = int_param(params.get("user"), 1, 2**63 - 1, "user", errors)
        since_text = (params.get("since") or "").strip()[:40]

        def work(visit: Visit) -> Page:
            require_admin(visit)
            since = None
            if since_text:
                try:
                    since = moment_of(since_text, visit.settings.timezone)
                except ValueError as exc:
                    errors["since"] = str(exc)
            return Page(
                AuditPage(
                    rows=trail(visit.session, user_id=user_id, since=since, limit=AUDIT_ROWS),
                    user=user_id,
                    since=since_text,
                    shown=AUDIT_ROWS,
                    errors=errors,
                ),
                400 if errors else 200,
            )

        # Failures wait in the process's buffer: written first, so that the page's
        # read (one snapshot) sees them.
        await self.web.execution.blocking(self.web.runtime.flush_audit)
        return await self.web.visit(request, "staff", work)
