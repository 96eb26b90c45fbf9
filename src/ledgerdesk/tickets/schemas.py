"""Wire parameters and results of the ticket actions (SPEC 3.3 to 3.9)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from ledgerdesk.attachments.incoming import base64_decoded_size
from ledgerdesk.attachments.rules import (
    MAX_ATTACHMENTS,
    MAX_FILE_NAME,
    check_media_type,
)
from ledgerdesk.errors import PayloadTooLarge
from ledgerdesk.tickets.service import MAX_CONTENT
from ledgerdesk.wire.types import INT64_MAX, Id, Params, RequiredText, Result, Text, WireInt

# The validation context carries the configured limit (see wire.registry.Action.run).
ATTACHMENT_LIMIT = "max_attachment_bytes"


def _media_type(value: str) -> str:
    value = value.strip()
    problem = check_media_type(value)
    if problem:
        raise ValueError(problem)
    return value


MediaType = Annotated[Text, AfterValidator(_media_type)]
FileName = Annotated[RequiredText, Field(max_length=MAX_FILE_NAME)]
StatusParam = Annotated[WireInt, Field(ge=0, le=2)]
Priority = Annotated[WireInt, Field(ge=1, le=4, description="1 Low, 2 Normal, 3 High, 4 Highest")]
Content = Annotated[RequiredText, Field(max_length=MAX_CONTENT)]


class AttachmentIn(Params):
    name: FileName
    content: Annotated[str, Field(strict=True, description="Base64 of the file's bytes")]
    contentType: MediaType
    size: Annotated[WireInt, Field(ge=0, le=INT64_MAX, description="Decoded size in bytes")]

    @field_validator("size")
    @classmethod
    def _within_limit(cls, size: int, info: ValidationInfo) -> int:
        limit = (info.context or {}).get(ATTACHMENT_LIMIT)
        if limit is not None and size > limit:
            # Not a 1003: the protocol answers an attachment over its limit with 4001.
            raise PayloadTooLarge(f"An attachment is larger than {limit} bytes.")
        return size

    @model_validator(mode="after")
    def _content_matches_size(self) -> AttachmentIn:
        # Counted, not decoded: the bytes are decoded (and every character checked) once,
        # in chunks, when they are written to disk.
        decoded = base64_decoded_size(self.content)
        if decoded is None:
            raise ValueError("content must be valid base64")
        if decoded != self.size:
            raise ValueError(f"size is {self.size} but the content holds {decoded} bytes")
        return self


Attachments = Annotated[list[AttachmentIn], Field(max_length=MAX_ATTACHMENTS)]


class GetTicketOverviewParams(Params):
    status: Annotated[
        WireInt, Field(ge=-1, le=2, description="0 closed, 1 open, 2 forcibly closed, -1 all")
    ] = -1


class TicketSummary(Result):
    userId: int
    ticketId: int
    ticketCode: int
    created: int
    title: str
    reference: str
    status: int = Field(description="0 closed, 1 open, 2 forcibly closed")
    statusUpdateTime: int
    timeLastUpdated: int
    priorityId: int


class TicketOverview(Result):
    tickets: list[TicketSummary]


class TicketIdParams(Params):
    ticketId: Id


class TicketState(Result):
    ticketId: int
    status: int = Field(description="0 closed, 1 open, 2 forcibly closed")
    turn: Literal["support", "customer"] | None = Field(
        description='An open ticket: "support" (you wrote last; support answers next) or '
        '"customer" (support answered: yours to read and answer); null when closed'
    )
    waitingUntil: int | None = Field(
        description="Unix time until which support waits for your answer before taking "
        "the ticket up again; null when it waits for no moment"
    )


class AttachmentInfo(Result):
    attachmentId: int
    name: str
    contentType: str
    size: int


class ReplyOut(Result):
    by: str = Field(description="The author's real name")
    userId: int
    created: int
    title: str
    content: str
    attachments: list[AttachmentInfo]


class TicketThread(Result):
    thread: TicketSummary
    replies: list[ReplyOut]


class CreateTicketParams(Params):
    title: Annotated[RequiredText, Field(max_length=255)]
    content: Content
    reference: Annotated[Text, Field(max_length=64)] = ""
    priorityId: Priority = 2
    attachments: Attachments = Field(default_factory=list)


class ReplyTicketParams(Params):
    ticketId: Id
    content: Content
    attachments: Attachments = Field(default_factory=list)


class TicketId(Result):
    ticketId: int


class GetTicketAttachmentParams(Params):
    ticketId: Id
    attachmentId: Id
    encoding: Literal["base64", "raw"] | None = Field(
        default=None,
        description='"base64" for the JSON envelope, "raw" for the file itself; without it, '
        "the file itself (with LEDGERDESK_COMPAT=i3d: the envelope)",
    )


class AttachmentContent(Result):
    attachmentId: int
    name: str
    contentType: str
    size: int
    content: str = Field(description="Standard padded base64, no line breaks")


class AttachmentEnvelope(Result):
    tickets: AttachmentContent


class TicketMessage(Result):
    ticket: str
