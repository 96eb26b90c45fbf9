"""The staff console (``/console``): one module per page family (the dashboard and
queue, customers, invoices; a ticket's pages are shared with the portal)."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from ledgerdesk.web import security
from ledgerdesk.web.console.customers import CustomerPages
from ledgerdesk.web.console.invoices import InvoicePages
from ledgerdesk.web.console.live import LivePages
from ledgerdesk.web.console.mail import MailPages
from ledgerdesk.web.console.queue import QueuePages
from ledgerdesk.web.console.replies import ReplyPages
from ledgerdesk.web.console.reports import ReportPages
from ledgerdesk.web.console.staff import StaffPages
from ledgerdesk.web.core import Web
from ledgerdesk.web.tickets import TicketPages
from ledgerdesk.web.webhooks import WebhookPages


def routes(web: Web) -> list[BaseRoute]:
    queue, customers, invoices = QueuePages(web), CustomerPages(web), InvoicePages(web)
    mail, staff, saved = MailPages(web), StaffPages(web), ReplyPages(web)
    live = LivePages(web)
    return [
        Route("/", queue.dashboard, methods=["GET"]),
        Route("/tickets", queue.queue, methods=["GET"]),
        Route("/tickets/bulk", queue.bulk, methods=["POST"]),
        Route("/live", live.stream, methods=["GET"]),
        Route("/tickets/{ticket_id:int}/presence", live.presence, methods=["POST"]),
        *TicketPages(web, "staff").routes(),
        Route("/customers", customers.customers, methods=["GET", "POST"]),
        Route("/customers/{user_id:int}", customers.customer, methods=["GET"]),
        Route("/customers/{user_id:int}/access", customers.access, methods=["POST"]),
        Route("/customers/{user_id:int}/details", customers.details, methods=["POST"]),
        Route("/customers/{user_id:int}/keys", customers.new_key, methods=["POST"]),
        Route("/customers/{user_id:int}/addresses", customers.addresses, methods=["POST"]),
        Route("/keys/{key_id:int}/revoke", customers.revoke, methods=["POST"]),
        Route("/invoices", invoices.invoices, methods=["GET", "POST"]),
        Route("/invoices/{invoice_id:int}", invoices.invoice, methods=["GET"]),
        Route("/invoices/{invoice_id:int}/paid", invoices.mark_paid, methods=["GET", "POST"]),
        Route("/invoices/{invoice_id:int}/payments", invoices.pay, methods=["POST"]),
        Route("/invoices/{invoice_id:int}/credit", invoices.credit, methods=["POST"]),
        Route("/invoices/{invoice_id:int}/documents/{format}", invoices.document, methods=["GET"]),
        Route("/seller", invoices.seller, methods=["GET", "POST"]),
        Route("/staff", staff.staff, methods=["GET", "POST"]),
        Route("/staff/{user_id:int}/access", staff.access, methods=["POST"]),
        Route("/audit", staff.audit, methods=["GET"]),
        Route("/reports/response-times", ReportPages(web).response_times, methods=["GET"]),
        Route("/replies", saved.replies, methods=["GET", "POST"]),
        Route("/replies/{saved_id:int}", saved.reply, methods=["GET", "POST"]),
        Route("/replies/{saved_id:int}/delete", saved.delete, methods=["POST"]),
        *WebhookPages(web, "staff").routes(),
        Route("/mail", mail.mail, methods=["GET"]),
        Route("/mail/{mail_id:int}", mail.message, methods=["GET"]),
        Route("/mail/{mail_id:int}/actions", mail.act, methods=["POST"]),
        Route("/mail/{mail_id:int}/raw", mail.raw, methods=["GET"]),
        *security.routes(web, "staff"),
    ]
