"""Webhook endpoints in the console (``/console/webhooks``: provider-wide endpoints and
every customer's) and the portal (``/account/webhooks``: the customer's own, which get
only events about them): register one, its deliveries and every attempt, switch it off
and on, rotate its secret, replay events, send a test, delete it."""

from __future__ import annotations

import orjson
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ledgerdesk.clock import moment_of
from ledgerdesk.db.models import DomainEvent, User
from ledgerdesk.errors import LedgerdeskError, NotFound, invalid
from ledgerdesk.events.log import EventRecord
from ledgerdesk.web.core import (
    Redirect,
    Refused,
    Role,
    Visit,
    Web,
    field_errors,
    own_only,
    path_id,
    text_field,
)
from ledgerdesk.web.pages import (
    ConfirmPage,
    Page,
    WebhookDeliveryPage,
    WebhookPage,
    WebhooksPage,
)
from ledgerdesk.webhooks.payloads import body_of
from ledgerdesk.webhooks.service import WebhookReader, WebhookService

CREATE_FIELDS = ("url", "event_types", "note")
REPLAY_FIELDS = ("event", "since", "until")
ACTIONS = ("enable", "disable", "rotate", "test")


class WebhookPages:
    def __init__(self, web: Web, role: Role) -> None:
        self.web = web
        self.role: Role = role
        self.base = ("/console" if role == "staff" else "/account") + "/webhooks"

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/webhooks", self.endpoints, methods=["GET", "POST"]),
            Route("/webhooks/{endpoint_id:int}", self.endpoint, methods=["GET"]),
            Route("/webhooks/{endpoint_id:int}/actions", self.act, methods=["POST"]),
            Route("/webhooks/{endpoint_id:int}/replay", self.replay, methods=["POST"]),
            Route("/webhooks/{endpoint_id:int}/delete", self.delete, methods=["GET", "POST"]),
            Route(
                "/webhooks/{endpoint_id:int}/deliveries/{delivery_id:int}",
                self.delivery,
                methods=["GET"],
            ),
        ]

    def _customer(self, visit: Visit) -> int | None:
        return own_only(self.role, visit)

    # -- the list and the form ----------------------------------------------------------

    def _list_page(
        self,
        visit: Visit,
        *,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Page:
        reader = WebhookReader(visit.session)
        customer = self._customer(visit)
        found = (
            reader.endpoints(everyone=True)
            if customer is None
            else reader.endpoints(owner_id=customer)
        )
        owners = {e.owner_id for e in found if e.owner_id is not None}
        named = visit.session.execute(select(User.id, User.name).where(User.id.in_(owners)))
        names: dict[int, str] = {row.id: row.name for row in named}
        return Page(
            WebhooksPage(
                base=self.base,
                staff=customer is None,
                endpoints=found,
                owner_names=names,
                values=values or {},
                errors=errors or {},
            ),
            400 if errors else 200,
        )

    async def endpoints(self, request: Request) -> Response:
        if request.method == "GET":
            return await self.web.visit(request, self.role, lambda visit: self._list_page(visit))
        form = await self.web.form(request, self.role)
        values = {name: text_field(form, name).strip() for name in CREATE_FIELDS}
        ordered = form.get("unordered") != "on"

        def work(visit: Visit) -> Redirect:
            types = [t for t in values["event_types"].replace(",", " ").split() if t]
            try:
                made = WebhookService.of(visit.work, visit.settings).create(
                    url=values["url"],
                    event_types=types,
                    note=values["note"],
                    owner_id=self._customer(visit),
                    ordered=ordered,
                )
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                raise Refused(
                    lambda again: self._list_page(again, errors=problems, values=values)
                ) from None
            return Redirect(
                f"{self.base}/{made.endpoint.id}",
                flash="Endpoint created. Its signing secret is shown below this once.",
                once={"webhook_secret": made.secret},
            )

        return await self.web.visit(request, self.role, work, form=form, write=True)

    # -- one endpoint -------------------------------------------------------------------

    def _endpoint_page(
        self,
        visit: Visit,
        endpoint_id: int,
        *,
        failed: bool = False,
        event: int | None = None,
        errors: dict[str, str] | None = None,
        values: dict[str, str] | None = None,
    ) -> Page:
        reader = WebhookReader(visit.session)
        view = reader.endpoint(endpoint_id, customer=self._customer(visit))
        owner = None if view.owner_id is None else visit.session.get(User, view.owner_id)
        return Page(
            WebhookPage(
                base=self.base,
                staff=self.role == "staff",
                endpoint=view,
                owner_name=None if owner is None else owner.name,
                deliveries=reader.deliveries(endpoint_id, failed=failed, event_id=event),
                failed_only=failed,
                event_filter=event,
                new_secret=visit.once.get("webhook_secret"),
                values=values or {},
                errors=errors or {},
            ),
            400 if errors else 200,
        )

    async def endpoint(self, request: Request) -> Response:
        endpoint_id = path_id(request, "endpoint_id")
        failed = request.query_params.get("failed") == "1"
        raw_event = request.query_params.get("event", "")
        event = int(raw_event) if raw_event.isdigit() and len(raw_event) < 19 else None
        return await self.web.visit(
            request,
            self.role,
            lambda visit: self._endpoint_page(visit, endpoint_id, failed=failed, event=event),
        )

    async def act(self, request: Request) -> Response:
        endpoint_id = path_id(request, "endpoint_id")
        form = await self.web.form(request, self.role)
        action = text_field(form, "action")

        def work(visit: Visit) -> Redirect:
            if action not in ACTIONS:
                raise invalid("action", f"must be one of {', '.join(ACTIONS)}")
            service = WebhookService.of(visit.work, visit.settings)
            customer = self._customer(visit)
            here = f"{self.base}/{endpoint_id}"
            try:
                if action == "rotate":
                    made = service.rotate_secret(endpoint_id, customer=customer)
                    return Redirect(
                        here,
                        flash="New signing secret made; the previous one signs too "
                        "for the grace period. The new one is shown below this once.",
                        once={"webhook_secret": made.secret},
                    )
                if action == "test":
                    service.send_test(endpoint_id, customer=customer)
                    return Redirect(here, flash="A test event is on its way.")
                view = service.set_enabled(endpoint_id, action == "enable", customer=customer)
            except NotFound:
                raise
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                raise Refused(
                    lambda again: self._endpoint_page(again, endpoint_id, errors=problems)
                ) from None
            return Redirect(here, flash=f"Endpoint {'enabled' if view.enabled else 'disabled'}.")

        return await self.web.visit(request, self.role, work, form=form, write=True)

    async def replay(self, request: Request) -> Response:
        endpoint_id = path_id(request, "endpoint_id")
        form = await self.web.form(request, self.role)
        values = {name: text_field(form, name).strip() for name in REPLAY_FIELDS}

        def work(visit: Visit) -> Redirect:
            try:
                event_id = _event_id(values["event"])
                since = _moment(values["since"], visit, "since")
                until = _moment(values["until"], visit, "until")
                if until is not None and since is None:
                    raise invalid("since", "give the start of the range")
                count = WebhookService.of(visit.work, visit.settings).replay(
                    endpoint_id,
                    event_id=event_id,
                    since=since,
                    until=until,
                    customer=self._customer(visit),
                )
            except NotFound:
                raise
            except LedgerdeskError as exc:
                problems = field_errors(exc)
                raise Refused(
                    lambda again: self._endpoint_page(
                        again, endpoint_id, errors=problems, values=values
                    )
                ) from None
            plural = "s" if count != 1 else ""
            return Redirect(f"{self.base}/{endpoint_id}", flash=f"Replaying {count} event{plural}.")

        return await self.web.visit(request, self.role, work, form=form, write=True)

    async def delete(self, request: Request) -> Response:
        endpoint_id = path_id(request, "endpoint_id")
        if request.method == "GET":

            def confirm(visit: Visit) -> Page:
                view = WebhookReader(visit.session).endpoint(
                    endpoint_id, customer=self._customer(visit)
                )
                return Page(
                    ConfirmPage(
                        title=f"Delete endpoint {view.id}?",
                        subject=view.url,
                        text="Its pending deliveries and its delivery log go with it; "
                        "this cannot be undone.",
                        action=f"{self.base}/{endpoint_id}/delete",
                        fields={},
                        button="Delete",
                        back=f"{self.base}/{endpoint_id}",
                    )
                )

            return await self.web.visit(request, self.role, confirm)
        form = await self.web.form(request, self.role)

        def work(visit: Visit) -> Redirect:
            WebhookService.of(visit.work, visit.settings).delete(
                endpoint_id, customer=self._customer(visit)
            )
            return Redirect(self.base, flash=f"Endpoint {endpoint_id} deleted.")

        return await self.web.visit(request, self.role, work, form=form, write=True)

    # -- one delivery -------------------------------------------------------------------

    async def delivery(self, request: Request) -> Response:
        endpoint_id = path_id(request, "endpoint_id")
        delivery_id = path_id(request, "delivery_id")

        def work(visit: Visit) -> Page:
            reader = WebhookReader(visit.session)
            view = reader.endpoint(endpoint_id, customer=self._customer(visit))
            found = reader.delivery(delivery_id)
            if found is None or found.endpoint_id != view.id:
                raise NotFound("There is no such delivery.")
            event = visit.session.get(DomainEvent, found.event_id)
            body = (
                ""
                if event is None
                else orjson.dumps(
                    orjson.loads(body_of(EventRecord.of(event))), option=orjson.OPT_INDENT_2
                ).decode()
            )
            return Page(
                WebhookDeliveryPage(
                    base=self.base,
                    endpoint=view,
                    delivery=found,
                    attempts=reader.attempts(delivery_id),
                    body=body,
                )
            )

        return await self.web.visit(request, self.role, work)


def _event_id(raw: str) -> int | None:
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise invalid("event", "must be an event's number")
    return int(raw)


def _moment(raw: str, visit: Visit, name: str) -> int | None:
    """A datetime-local field (2026-11-30T12:00), in the server's time zone."""
    if not raw:
        return None
    try:
        return moment_of(raw, visit.settings.timezone)
    except ValueError:
        raise invalid(name, "must be a date and time such as 2026-11-30T12:00") from None
