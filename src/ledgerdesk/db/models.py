"""The ORM schema. Alembic migrations in ``migrations/`` build it; tests never use create_all.

Conventions: times are unix seconds (integers), calendar dates are ``DATE``, money is
integer hundredths of the currency's unit ("cents"), percentages integer hundredths and
quantities and unit prices integer ten-thousandths, so nothing exact is ever a float.
Relationships load with ``lazy="raise"``: an accidental N+1 query fails loudly in tests.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
Id = BigInteger().with_variant(Integer, "sqlite")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    is_staff: Mapped[bool] = mapped_column(Boolean, default=False)
    # A staff member who administers the others (invites, disables, the audit trail).
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[int] = mapped_column(BigInteger)
    # Sign-in for people (the web console and portal); None until an invitation is taken.
    password_hash: Mapped[str | None] = mapped_column(String(255))
    # A disabled user can neither sign in nor use API keys.
    disabled_at: Mapped[int | None] = mapped_column(BigInteger)
    # TOTP second factor (staff): the base32 secret once confirmed, the last time step
    # accepted (a code is good once), and SHA-256 hashes of unused recovery codes.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    recovery_codes: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    # Billing details (customers): what an invoice names as its buyer, checked by
    # accounts.billing; the country is needed before an invoice is issued to them.
    legal_name: Mapped[str | None] = mapped_column(String(200))
    vat_id: Mapped[str | None] = mapped_column(String(32))
    address_line: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    postcode: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str | None] = mapped_column(String(2))
    billing_email: Mapped[str | None] = mapped_column(String(320))
    # Where e-invoices reach them (Peppol): an EAS scheme and an id, "0208:0123456789".
    electronic_address: Mapped[str | None] = mapped_column(String(120))
    # Staff: which mail about tickets they want (mail.notifications): all, own, none.
    mail_notify: Mapped[str] = mapped_column(String(8), server_default="all")


class Seller(Base):
    """The provider's legal details: one row (id 1), named by every invoice it issues
    (each invoice keeps a copy as it was when issued)."""

    __tablename__ = "seller"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    vat_id: Mapped[str] = mapped_column(String(32))
    address_line: Mapped[str] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    postcode: Mapped[str] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2))
    email: Mapped[str | None] = mapped_column(String(320))
    iban: Mapped[str | None] = mapped_column(String(34))
    bic: Mapped[str | None] = mapped_column(String(11))
    electronic_address: Mapped[str | None] = mapped_column(String(120))
    # The currency the seller accounts for VAT in (EN 16931 BT-6 when it is not the
    # invoice's): LEDGERDESK_CURRENCY unless set.
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[int] = mapped_column(BigInteger)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # SHA-256 of the key, hex. Keys are 20 random characters (about 119 bits), so a fast
    # hash is enough: there is no low-entropy secret for a slow hash to protect.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # None means "every category" / "any address".
    categories: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    ip_ranges: Mapped[list[str] | None] = mapped_column(JSON(none_as_null=True))
    expires_on: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)
    use_count: Mapped[int] = mapped_column(BigInteger, default=0)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class Invoice(Base):
    __tablename__ = "invoices"
    __table_args__ = (
        # A customer's invoices by date, the kind read from the index too (getInvoiceIds
        # lists invoices, credit notes or both without reading the table).
        Index("ix_invoices_user_id_created_on_id_kind", "user_id", "created_on", "id", "kind"),
        # Unpaid and overdue invoices for staff, by due date: only unpaid ones are in it.
        Index(
            "ix_invoices_unpaid_pay_before",
            "pay_before",
            "id",
            sqlite_where=text("paid_on IS NULL"),
            postgresql_where=text("paid_on IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="RESTRICT"))
    number: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(255))
    description: Mapped[str] = mapped_column(Text, default="")
    created_on: Mapped[date] = mapped_column(Date)
    pay_before: Mapped[date] = mapped_column(Date)
    # Totals (hundredths of the currency's unit, see invoices.money): without VAT
    # (BT-109) and VAT (BT-110); the rate the protocol's one-rate answer shows.
    amount_excl_vat_cents: Mapped[int] = mapped_column(BigInteger)
    vat_cents: Mapped[int] = mapped_column(BigInteger)
    vat_perc_hundredths: Mapped[int] = mapped_column(Integer)
    # The day it was settled: paid in full (payments and credit notes cover it); a
    # credit note is settled the day it is issued.
    paid_on: Mapped[date | None] = mapped_column(Date)
    # "invoice" or "credit_note" (which names the invoice it corrects).
    kind: Mapped[str] = mapped_column(String(12), server_default="invoice")
    corrects_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("invoices.id", ondelete="RESTRICT"), index=True
    )
    currency: Mapped[str] = mapped_column(String(3))
    # invoices.pricing.Treatment, and the reason of lines exempt from VAT.
    treatment: Mapped[str] = mapped_column(String(16), server_default="domestic")
    exemption_reason: Mapped[str | None] = mapped_column(Text)
    # In another currency than the seller's VAT accounting currency: that currency, the
    # rate (its units for one of the invoice's) and the VAT total in it (BT-6, BT-111).
    tax_currency: Mapped[str | None] = mapped_column(String(3))
    exchange_rate: Mapped[str | None] = mapped_column(String(24))
    tax_currency_vat_cents: Mapped[int | None] = mapped_column(BigInteger)
    # The seller and the buyer as they were when it was issued (a document is made from
    # the invoice alone); None for invoices issued before parties were kept.
    parties: Mapped[dict[str, dict[str, str | None]] | None] = mapped_column(
        JSON(none_as_null=True)
    )
    # What payments and credit notes have settled of it so far.
    paid_cents: Mapped[int] = mapped_column(BigInteger, server_default="0")
    credited_cents: Mapped[int] = mapped_column(BigInteger, server_default="0")


class InvoiceLine(Base):
    """A line of an invoice or a credit note, as issued (never changed after)."""

    __tablename__ = "invoice_lines"
    # Kept in the order of its key (SQLite: WITHOUT ROWID), so an invoice's lines are
    # one descent of one B-tree, read with the invoice in getInvoiceDetails.
    __table_args__ = ({"sqlite_with_rowid": False},)

    invoice_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("invoices.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    description: Mapped[str] = mapped_column(Text)
    # Ten-thousandths: a quantity or a unit price may have four decimals.
    quantity_e4: Mapped[int] = mapped_column(BigInteger)
    unit_price_e4: Mapped[int] = mapped_column(BigInteger)
    # invoices.pricing.VatCategory and the rate in hundredths of a percent.
    category: Mapped[str] = mapped_column(String(2))
    rate: Mapped[int] = mapped_column(Integer)
    net_cents: Mapped[int] = mapped_column(BigInteger)


class Payment(Base):
    """Money received for an invoice (one of several, when paid in parts)."""

    __tablename__ = "payments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("invoices.id", ondelete="RESTRICT"), index=True
    )
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    paid_on: Mapped[date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(64))
    reference: Mapped[str] = mapped_column(String(255))
    recorded_at: Mapped[int] = mapped_column(BigInteger)


class DocumentCounter(Base):
    """The last sequence number handed out per series (F: invoices, C: credit notes)
    and year.

    Incremented inside the transaction that inserts the document, so a rolled-back
    creation gives its number back and each series stays gapless.
    """

    __tablename__ = "document_counters"

    series: Mapped[str] = mapped_column(String(4), primary_key=True)
    year: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_user_id_status", "user_id", "status"),
        # A customer's overview, newest first, read from the index alone: every column
        # the answer needs is in it (at a million tickets, half the time of the query).
        Index(
            "ix_tickets_overview",
            "user_id",
            "created_at",
            "id",
            "code",
            "title",
            "reference",
            "status",
            "priority",
            "status_updated_at",
            "last_updated_at",
        ),
        # The staff queue: by status, longest waiting first; or by priority first; or
        # one customer's tickets, longest waiting first.
        Index("ix_tickets_user_id_last_updated_at", "user_id", "last_updated_at", "id"),
        Index("ix_tickets_status_last_updated_at", "status", "last_updated_at", "id"),
        Index(
            "ix_tickets_status_priority_last_updated_at",
            "status",
            "priority",
            "last_updated_at",
            "id",
        ),
        # Mine / unassigned, and whose turn it is.
        Index(
            "ix_tickets_status_assignee_id_last_updated_at",
            "status",
            "assignee_id",
            "last_updated_at",
            "id",
        ),
        Index("ix_tickets_status_turn_last_updated_at", "status", "turn", "last_updated_at", "id"),
        Index("ix_tickets_status_due_at", "status", "due_at", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # Random and unique; the customer-facing code must not reveal how many tickets exist.
    code: Mapped[int] = mapped_column(Integer, unique=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(String(255))
    reference: Mapped[str] = mapped_column(String(64), default="")
    status: Mapped[int] = mapped_column(SmallInteger)
    priority: Mapped[int] = mapped_column(SmallInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    status_updated_at: Mapped[int] = mapped_column(BigInteger)
    last_updated_at: Mapped[int] = mapped_column(BigInteger)
    # The support day: who has it, whose turn it is (1 ours: the customer spoke last;
    # 2 the customer's: staff did), since when the customer waits, and until when it
    # waits for the customer (back in our queue once that passes).
    assignee_id: Mapped[int | None] = mapped_column(BigInteger)  # a user (never deleted)
    turn: Mapped[int] = mapped_column(SmallInteger, default=1, server_default=text("1"))
    customer_said_at: Mapped[int | None] = mapped_column(BigInteger)
    pending_until: Mapped[int | None] = mapped_column(BigInteger)
    merged_into_id: Mapped[int | None] = mapped_column(BigInteger)  # its messages are there
    # Service levels: since when the customer waits, when staff first answered, and when
    # the running target falls due (none: the customer's turn, or closed).
    waiting_since: Mapped[int | None] = mapped_column(BigInteger)
    answered_at: Mapped[int | None] = mapped_column(BigInteger)
    due_at: Mapped[int | None] = mapped_column(BigInteger)


class TicketTag(Base):
    """A tag on a ticket: staff's label, lower case (the queue filters by it)."""

    __tablename__ = "ticket_tags"
    __table_args__ = (Index("ix_ticket_tags_tag_ticket_id", "tag", "ticket_id"),)

    ticket_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)


class ServiceLevelState(Base):
    """The fingerprint of the service levels the tickets' due times were computed with
    (one row): other settings at start-up, and they are computed again."""

    __tablename__ = "service_level_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    fingerprint: Mapped[str] = mapped_column(String(64))


class TicketView(Base):
    """When a staff member last opened a ticket (bookkeeping, like a session's last use:
    no event); the customer's words since then are unread for them. While the ticket's
    page is open, its script says so now and then: the staff member is there until
    ``here_until``, writing a reply until ``typing_until`` (the others see it)."""

    __tablename__ = "ticket_views"
    __table_args__ = (Index("ix_ticket_views_ticket_id_here_until", "ticket_id", "here_until"),)

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    seen_at: Mapped[int] = mapped_column(BigInteger)
    here_until: Mapped[int | None] = mapped_column(BigInteger)
    typing_until: Mapped[int | None] = mapped_column(BigInteger)


class SavedReply(Base):
    """An answer staff write once and insert into replies; its text may name the
    customer, the ticket and the agent by placeholders (tickets.saved)."""

    __tablename__ = "saved_replies"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    title: Mapped[str] = mapped_column(String(100), unique=True)
    content: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class Reply(Base):
    __tablename__ = "ticket_replies"
    __table_args__ = (Index("ix_ticket_replies_ticket_id_id", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[int] = mapped_column(BigInteger)
    title: Mapped[str] = mapped_column(String(255))
    content: Mapped[str] = mapped_column(Text)
    # Internal notes are written and read by staff only: never shown to the customer.
    internal: Mapped[bool] = mapped_column(Boolean, default=False)


class SearchEntry(Base):
    """What the console's search finds, folded to plain lower-case words
    (``db.search.words``): one entry a ticket (code, title, reference, its customer's
    name and email) and one a message (``reply_id``). Indexed by full text beside the
    table: on PostgreSQL a GIN index over the generated column ``search_vector``
    (``to_tsvector('simple', words)``), on SQLite the FTS5 table ``search_fts`` kept in
    step by triggers (both made by migration 0023, outside these models)."""

    __tablename__ = "search_entries"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"), unique=True
    )
    reply_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("ticket_replies.id", ondelete="CASCADE"), unique=True
    )
    words: Mapped[str] = mapped_column(Text)


class Attachment(Base):
    __tablename__ = "attachments"
    __table_args__ = (
        Index("ix_attachments_ticket_id_id", "ticket_id", "id"),
        Index("ix_attachments_sha256", "sha256"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # The ticket is stored beside the reply so that every lookup can be scoped to the
    # ticket (and through it to the owner) without a join through the reply.
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"))
    reply_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("ticket_replies.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))


class WebSession(Base):
    """A signed-in person's browser session. The cookie holds a secret; this row its hash.

    Deleting the row ends the session: signing out, a disabled user, a new password.
    """

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user_id", "user_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    # False between the password and the second factor of a user with TOTP.
    verified: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)


class WebNotice(Base):
    """What a page says once after a form: a message, and perhaps a one-time value (a new
    API key, a password link, recovery codes) sealed with a key derived from the session
    cookie's secret, which the server never stores: the database alone cannot read it.

    Shown by the page the form redirects to and deleted as it is shown, so a reload shows
    it no more and repeats nothing; gone with its session, and after NOTICE_SECONDS.
    """

    __tablename__ = "web_notices"
    __table_args__ = (Index("ix_web_notices_session_hash", "session_hash"),)

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_hash: Mapped[str] = mapped_column(
        String(64), ForeignKey("web_sessions.token_hash", ondelete="CASCADE")
    )
    created_at: Mapped[int] = mapped_column(BigInteger)
    message: Mapped[str | None] = mapped_column(Text)
    sealed: Mapped[str | None] = mapped_column(Text)


class UserToken(Base):
    """A one-time link to set a password: an invitation or a password reset."""

    __tablename__ = "user_tokens"
    __table_args__ = (Index("ix_user_tokens_user_id", "user_id"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))  # "invite" or "reset"
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)


class Blob(Base):
    """Attachment bytes, for the database store (content-addressed), in ``BlobChunk``s."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


class BlobChunk(Base):
    """One piece of a blob (1 MiB, the last one shorter), read and written one at a time
    so that no request holds a whole file in memory."""

    __tablename__ = "blob_chunks"

    sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("blobs.sha256", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class IdempotentRequest(Base):
    """The first answer to a write sent with an Idempotency-Key, kept for 24 hours (then
    pruned: ``ledgerdesk db prune``, and by the server every few minutes)."""

    __tablename__ = "idempotent_requests"
    __table_args__ = (Index("ix_idempotent_requests_created_at", "created_at"),)

    user_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(BigInteger)


class AuditEvent(Base):
    """One write or failed authentication: who, from where, what, on what, and how it ended.

    Never a key, a key's hash or attachment bytes. ``user_id`` is the account the
    request named, which for a failed authentication may not exist (no foreign key).
    """

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_user_id_id", "user_id", "id"),
        Index("ix_audit_events_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    created_at: Mapped[int] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16))  # "api" or "admin"
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    key_id: Mapped[int | None] = mapped_column(BigInteger)
    client_address: Mapped[str | None] = mapped_column(String(45))
    action: Mapped[str] = mapped_column(String(64))
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(16))  # "ok", "replayed" or "error"
    error_code: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(128))


class DomainEvent(Base):
    """Something that happened, recorded by the domain in the transaction of the change.

    Ids only grow and are committed in their order (see events.work), so a reader that
    remembers the last id it saw never skips one. ``actor_id`` is the user who acted
    (None for the system), ``customer_id`` the customer the event concerns (None for
    staff's own affairs), ``subject_id`` what it happened to (by the type's subject).
    The payload never holds a secret, a key or a file's bytes.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_customer_id_id", "customer_id", "id"),
        Index("ix_events_subject_id_id", "subject_id", "id"),
        Index("ix_events_type_id", "type", "id"),
        Index("ix_events_created_at", "created_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    door: Mapped[str] = mapped_column(String(16))
    actor_kind: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(BigInteger)
    key_id: Mapped[int | None] = mapped_column(BigInteger)
    customer_id: Mapped[int | None] = mapped_column(BigInteger)
    subject_id: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    client_address: Mapped[str | None] = mapped_column(String(45))
    request_id: Mapped[str | None] = mapped_column(String(128))


class WebhookEndpoint(Base):
    """Where events are delivered: a provider-wide endpoint (``owner_id`` None: every
    customer's events) or a customer's own (only events about that customer).

    ``event_types`` holds the type filters (``ticket.replied``, ``ticket.*``; empty: all).
    The secret signs deliveries; after a rotation the previous one signs too until
    ``previous_until``. Deliveries go to events after ``after_event_id`` (the log's newest
    when the endpoint was made). ``failing_since``: the first failure of the current run
    of failures (cleared by a success). Ordered endpoints are served by one relay at a
    time: ``held_until`` (ms) is that relay's lease, or how long the oldest delivery waits
    for its retry, ``holder`` the lease's token.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    note: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_until: Mapped[int | None] = mapped_column(BigInteger)
    enabled: Mapped[bool] = mapped_column(Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    ordered: Mapped[bool] = mapped_column(Boolean)
    failing_since: Mapped[int | None] = mapped_column(BigInteger)
    held_until: Mapped[int | None] = mapped_column(BigInteger)
    holder: Mapped[str | None] = mapped_column(String(32))
    after_event_id: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)


class WebhookDelivery(Base):
    """One event to one endpoint: ``kind`` event (the relay's fan-out), replay or test;
    ``state`` pending, delivered or failed (the retries ran out, the endpoint answered
    410, or it was refused). Times in milliseconds. Unordered endpoints' deliveries are
    leased one by one (``lease_until``, ``holder``)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
        Index("ix_webhook_deliveries_event_id", "event_id"),
        Index(
            "ix_webhook_deliveries_pending",
            "endpoint_id",
            "id",
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
        Index(
            "ix_webhook_deliveries_due",
            "next_at",
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
        Index("ix_webhook_deliveries_done_at", "done_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer)
    next_at: Mapped[int] = mapped_column(BigInteger)
    lease_until: Mapped[int | None] = mapped_column(BigInteger)
    holder: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[int] = mapped_column(BigInteger)
    done_at: Mapped[int | None] = mapped_column(BigInteger)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))


class WebhookAttempt(Base):
    """One try of a delivery, as the delivery log shows it: when (ms), how long, the
    status (None: no answer), the start of the answer, what went wrong, the address."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (
        Index("ix_webhook_attempts_endpoint_id_id", "endpoint_id", "id"),
        Index("ix_webhook_attempts_delivery_id", "delivery_id"),
        Index("ix_webhook_attempts_at", "at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    endpoint_id: Mapped[int] = mapped_column(BigInteger)
    event_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[int] = mapped_column(BigInteger)
    milliseconds: Mapped[int] = mapped_column(Integer)
    status: Mapped[int | None] = mapped_column(Integer)
    answer: Mapped[str] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(String(500))
    address: Mapped[str | None] = mapped_column(String(45))


class WebhookCursor(Base):
    """The relay's place in the event log: events up to ``last_event_id`` have their
    deliveries. One row (id 1), locked by the relay that fans out."""

    __tablename__ = "webhook_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_event_id: Mapped[int] = mapped_column(BigInteger)


class MailMessage(Base):
    """A received mail: kept whole (its bytes in the blob store, ``raw_sha256``, as
    attachments are), with where it went: ``state`` joined (a reply to ``ticket_id``),
    opened (a new ticket), held (for staff), refused, ignored (automatic mail), bounced
    (a delivery report of ours), unreadable or failed (the console's queue), and why."""

    __tablename__ = "mail_messages"
    __table_args__ = (
        Index(
            "ix_mail_messages_message_id_sender",
            "message_id",
            "sender",
            unique=True,
            sqlite_where=text("message_id IS NOT NULL"),
            postgresql_where=text("message_id IS NOT NULL"),
        ),
        Index("ix_mail_messages_state_id", "state", "id"),
        Index("ix_mail_messages_ticket_id", "ticket_id"),
        Index("ix_mail_messages_raw_sha256", "raw_sha256"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    received_at: Mapped[int] = mapped_column(BigInteger)
    via: Mapped[str] = mapped_column(String(8))
    message_id: Mapped[str | None] = mapped_column(String(998))
    sender: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(998))
    size: Mapped[int] = mapped_column(BigInteger)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12))
    why: Mapped[str] = mapped_column(String(500))
    ticket_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("tickets.id", ondelete="SET NULL")
    )
    reply_id: Mapped[int | None] = mapped_column(BigInteger)
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="SET NULL")
    )
    named_ticket_id: Mapped[int | None] = mapped_column(BigInteger)  # held: the ticket it names


class MailAddress(Base):
    """What ledgerdesk knows of an address beyond a user's own email: a customer's added
    address (``user_id``; it threads their mail once ``confirmed_at``), and whether mail
    to it fails (a bounce, a permanent refusal)."""

    __tablename__ = "mail_addresses"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    failing_since: Mapped[int | None] = mapped_column(BigInteger)
    failing_reason: Mapped[str | None] = mapped_column(String(500))
    added_at: Mapped[int | None] = mapped_column(BigInteger)  # ms: the confirmation's nonce
    confirmed_at: Mapped[int | None] = mapped_column(BigInteger)


class MailKey(Base):
    """The key that signs the tags of outgoing mail (mail.tags); one row, made by the
    migration, shared by every server of the database."""

    __tablename__ = "mail_key"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    key: Mapped[str] = mapped_column(String(128))


class MailOutbox(Base):
    """A mail to send: made from an event (``event_id``, a notification of ``kind`` to a
    user) or by the intake (``mail_id``: a refusal to an unknown sender); sent by the mail
    relay with leases and retries like a webhook delivery (times in ms). ``message_id``
    is the one it went out with: later mail about the ticket refers to it."""

    __tablename__ = "mail_outbox"
    __table_args__ = (
        Index(
            "ix_mail_outbox_due",
            "next_at",
            sqlite_where=text("state = 'pending'"),
            postgresql_where=text("state = 'pending'"),
        ),
        Index("ix_mail_outbox_ticket_id_id", "ticket_id", "id"),
        Index("ix_mail_outbox_address_created_at", "address", "created_at"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    event_id: Mapped[int | None] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(20))
    recipient_id: Mapped[int | None] = mapped_column(BigInteger)
    address: Mapped[str] = mapped_column(String(320))
    state: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer)
    next_at: Mapped[int] = mapped_column(BigInteger)
    lease_until: Mapped[int | None] = mapped_column(BigInteger)
    holder: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[str | None] = mapped_column(String(255))
    ticket_id: Mapped[int | None] = mapped_column(BigInteger)
    mail_id: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(String(500))


class MailCursor(Base):
    """The mail relay's place in the event log (one row, as ``webhook_cursor``)."""

    __tablename__ = "mail_cursor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_event_id: Mapped[int] = mapped_column(BigInteger)


class MailFetcher(Base):
    """How an IMAP mailbox's fetching goes (``name``: the mailbox's URL without its
    password): when it last worked, since when it fails and why (the dashboard's)."""

    __tablename__ = "mail_fetchers"

    name: Mapped[str] = mapped_column(String(300), primary_key=True)
    last_ok_at: Mapped[int | None] = mapped_column(BigInteger)
    failing_since: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(String(500))
    holder: Mapped[str | None] = mapped_column(String(64))  # the server fetching it
    lease_until: Mapped[int | None] = mapped_column(BigInteger)  # ms
