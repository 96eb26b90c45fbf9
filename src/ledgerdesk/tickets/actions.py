"""The ticket actions of the administration category (SPEC 3.3 to 3.9)."""

from __future__ import annotations

from typing import Any

from ledgerdesk.attachments.incoming import IncomingFile, RequestFiles
from ledgerdesk.attachments.rules import MAX_ATTACHMENTS, check_file_name, check_media_type
from ledgerdesk.db.models import User
from ledgerdesk.errors import (
    IdempotencyConflict,
    InvalidParameters,
    InvalidState,
    NotFound,
    ParamError,
    PayloadTooLarge,
    invalid,
)
from ledgerdesk.tickets.queries import AttachmentRecord, TicketQueries, TicketRecord
from ledgerdesk.tickets.schemas import (
    AttachmentContent,
    AttachmentEnvelope,
    CreateTicketParams,
    GetTicketAttachmentParams,
    GetTicketOverviewParams,
    ReplyTicketParams,
    TicketId,
    TicketIdParams,
    TicketMessage,
    TicketOverview,
    TicketState,
    TicketThread,
)
from ledgerdesk.tickets.service import ReplyView, TicketReader, TicketService, TicketStatus, Turn
from ledgerdesk.wire.registry import Action, ActionContext, FileDownload
from ledgerdesk.wire.types import Shaped


def summary(ticket: TicketRecord) -> dict[str, Any]:
    """A ticket as ``TicketSummary`` lays it out."""
    return {
        "userId": ticket.user_id,
        "ticketId": ticket.id,
        "ticketCode": ticket.code,
        "created": ticket.created_at,
        "title": ticket.title,
        "reference": ticket.reference,
        "status": ticket.status,
        "statusUpdateTime": ticket.status_updated_at,
        "timeLastUpdated": ticket.last_updated_at,
        "priorityId": ticket.priority,
    }


def attachment_info(attachment: AttachmentRecord) -> dict[str, Any]:
    """An attachment as ``AttachmentInfo`` lays it out."""
    return {
        "attachmentId": attachment.id,
        "name": attachment.name,
        "contentType": attachment.content_type,
        "size": attachment.size,
    }


def reply_out(view: ReplyView) -> dict[str, Any]:
    """A reply with its attachments as ``ReplyOut`` lays it out."""
    return {
        "by": view.reply.author_name,
        "userId": view.reply.author_id,
        "created": view.reply.created_at,
        "title": view.reply.title,
        "content": view.reply.content,
        "attachments": [attachment_info(a) for a in view.attachments],
    }


def incoming_files(
    files: RequestFiles, params: CreateTicketParams | ReplyTicketParams
) -> list[IncomingFile]:
    """Every attachment of the request as an incoming file, checked like the JSON ones.

    Dispatch calls this before the handler (``Action.files``), so that an
    Idempotency-Key compares the files' contents whichever way they were sent.
    """
    uploaded = files.uploaded
    attachments = params.attachments
    if len(uploaded) + len(attachments) > MAX_ATTACHMENTS:
        raise InvalidParameters(
            f"At most {MAX_ATTACHMENTS} attachments per request.",
            [ParamError("attachments", f"at most {MAX_ATTACHMENTS} files")],
        )
    errors = []
    for index, upload in enumerate(uploaded):
        for field, message in (
            ("name", check_file_name(upload.name)),
            ("contentType", check_media_type(upload.content_type)),
        ):
            if message:
                errors.append(ParamError(f"attachments[{index}].{field}", message))
    if errors:
        raise InvalidParameters("Invalid attachments.", errors)
    decoded = []
    for index, attachment in enumerate(attachments):
        try:
            decoded.append(
                files.from_base64(attachment.name, attachment.contentType, attachment.content)
            )
        except ValueError:  # binascii.Error, or a character outside ASCII
            raise invalid(f"attachments[{index}].content", "must be valid base64") from None
    return [*uploaded, *decoded]


def _reader(context: ActionContext) -> TicketReader:
    return TicketReader(TicketQueries(context.db))


def _customer(context: ActionContext) -> User:
    user = context.session.get(User, context.principal.user_id)
    assert user is not None, "an authenticated principal always has a user row"
    return user


def get_ticket_overview(
    context: ActionContext, params: GetTicketOverviewParams
) -> Shaped[TicketOverview]:
    tickets = _reader(context).overview(
        user_id=context.principal.user_id, status=None if params.status == -1 else params.status
    )
    return Shaped(TicketOverview, {"tickets": [summary(t) for t in tickets]})


def get_ticket(context: ActionContext, params: TicketIdParams) -> Shaped[TicketThread]:
    thread = _reader(context).thread(params.ticketId, user_id=context.principal.user_id)
    return Shaped(
        TicketThread,
        {
            "thread": summary(thread.ticket),
            "replies": [reply_out(view) for view in thread.replies],
        },
    )


def get_ticket_state(context: ActionContext, params: TicketIdParams) -> TicketState:
    """Whose turn it is on a ticket, as its customer reads it (getTicket's answer stays
    the original API's: old clients read it byte for byte)."""
    found = TicketQueries(context.db).turn(params.ticketId, user_id=context.principal.user_id)
    if found is None:
        raise NotFound(f"Ticket {params.ticketId} not found.")
    if found.status != TicketStatus.OPEN:
        return TicketState(
            ticketId=params.ticketId, status=found.status, turn=None, waitingUntil=None
        )
    pending = found.pending_until
    waiting = pending if pending is not None and pending > context.now else None
    theirs = found.turn == Turn.CUSTOMERS and (pending is None or waiting is not None)
    return TicketState(
        ticketId=params.ticketId,
        status=found.status,
        turn="customer" if theirs else "support",
        waitingUntil=waiting,
    )


def get_ticket_attachment(
    context: ActionContext, params: GetTicketAttachmentParams
) -> FileDownload:
    attachment, content = _reader(context).attachment(
        params.ticketId,
        params.attachmentId,
        user_id=context.principal.user_id,
        store=context.blob_store,
    )
    encoding = params.encoding or ("base64" if context.settings.i3d_compatible else "raw")
    if encoding == "raw":
        return FileDownload(attachment.name, attachment.content_type, content)
    # The envelope with an empty "content": the wire layer streams the base64 into it.
    envelope = AttachmentEnvelope(
        tickets=AttachmentContent(
            attachmentId=attachment.id,
            name=attachment.name,
            contentType=attachment.content_type,
            size=attachment.size,
            content="",
        )
    )
    return FileDownload(attachment.name, attachment.content_type, content, envelope)


def create_ticket(context: ActionContext, params: CreateTicketParams) -> TicketId:
    ticket = TicketService(context.work).create(
        customer_id=context.principal.user_id,
        title=params.title,
        content=params.content,
        reference=params.reference,
        priority=params.priorityId,
        files=context.attachments,
    )
    return TicketId(ticketId=ticket.id)


def reply_ticket(context: ActionContext, params: ReplyTicketParams) -> TicketId:
    ticket = TicketService(context.work).reply(
        params.ticketId,
        author=_customer(context),
        content=params.content,
        files=context.attachments,
    )
    return TicketId(ticketId=ticket.id)


def reopen_ticket(context: ActionContext, params: TicketIdParams) -> TicketMessage:
    ticket = TicketService(context.work).reopen(params.ticketId, user_id=context.principal.user_id)
    return TicketMessage(ticket=f"Ticket thread {ticket.id} has been reopened")


def close_ticket(context: ActionContext, params: TicketIdParams) -> TicketMessage:
    ticket = TicketService(context.work).close(params.ticketId, user_id=context.principal.user_id)
    return TicketMessage(ticket=f"Ticket thread {ticket.id} has been closed")


ACTIONS: tuple[Action[Any, Any], ...] = (
    Action(
        name="getTicketOverview",
        summary="Get a list of tickets, opened, closed or any status",
        description="The caller's tickets, newest first.",
        params=GetTicketOverviewParams,
        result=TicketOverview,
        handler=get_ticket_overview,
    ),
    Action(
        name="getTicket",
        summary="Get a ticket thread and replies",
        description="The thread and its replies in the order they were stored.",
        params=TicketIdParams,
        result=TicketThread,
        handler=get_ticket,
        errors=(NotFound,),
    ),
    Action(
        name="getTicketState",
        summary="Whose turn it is on a ticket",
        description="Not in the original API. Whether support answers next or the ticket "
        "waits for you (support answered), and until when support waits for your answer.",
        params=TicketIdParams,
        result=TicketState,
        handler=get_ticket_state,
        errors=(NotFound,),
        timely=True,  # waiting for the customer runs out with time, no write
    ),
    Action(
        name="getTicketAttachment",
        summary="Download an attachment",
        description="The file itself (its stored Content-Type, Content-Disposition: "
        'attachment), or with "encoding": "base64" the JSON envelope below. A server run '
        'with LEDGERDESK_COMPAT=i3d answers the envelope unless "encoding" is "raw".',
        params=GetTicketAttachmentParams,
        result=AttachmentEnvelope,
        handler=get_ticket_attachment,
        errors=(NotFound,),
        returns_file=True,
        offload=True,
    ),
    Action(
        name="createTicket",
        summary="Create a new ticket thread",
        description="The ticket and its attachments are stored together or not at all. "
        "Honours an Idempotency-Key header.",
        params=CreateTicketParams,
        result=TicketId,
        handler=create_ticket,
        errors=(PayloadTooLarge, IdempotencyConflict),
        writes=True,
        files=incoming_files,
        idempotent=True,
    ),
    Action(
        name="replyTicket",
        summary="Reply to an existing ticket thread",
        description="A reply to a closed ticket reopens it; a forcibly closed ticket takes "
        "no replies. Honours an Idempotency-Key header.",
        params=ReplyTicketParams,
        result=TicketId,
        handler=reply_ticket,
        errors=(NotFound, InvalidState, PayloadTooLarge, IdempotencyConflict),
        writes=True,
        files=incoming_files,
        idempotent=True,
    ),
    Action(
        name="reopenTicket",
        summary="Reopen a closed ticket thread",
        params=TicketIdParams,
        result=TicketMessage,
        handler=reopen_ticket,
        errors=(NotFound, InvalidState),
        writes=True,
    ),
    Action(
        name="closeTicket",
        summary="Close a ticket thread",
        params=TicketIdParams,
        result=TicketMessage,
        handler=close_ticket,
        errors=(NotFound,),
        writes=True,
    ),
)
