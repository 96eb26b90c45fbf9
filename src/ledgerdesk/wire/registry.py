"""The action registry: one table from which dispatch, alias routes and OpenAPI are built.

Each domain's ``actions.py`` declares its actions; ``build_registry`` gathers them.
Nothing else knows the list of actions, so the routes and the documentation can't drift.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from sqlalchemy.orm import Session

from ledgerdesk.accounts.service import Principal
from ledgerdesk.attachments.incoming import IncomingFile, RequestFiles
from ledgerdesk.attachments.storage import BlobContent, BlobStore
from ledgerdesk.config import Settings
from ledgerdesk.db.prepared import Db
from ledgerdesk.errors import InvalidParameters, LedgerdeskError, ParamError, invalid
from ledgerdesk.events.work import Work
from ledgerdesk.wire.types import Params, Result, Shaped

P = TypeVar("P", bound=Params)
R = TypeVar("R", bound=Result)


@dataclass(frozen=True)
class FileDownload:
    """A handler's answer that is a file itself rather than an envelope; or, with
    ``envelope``, the success envelope of that result with the file's base64 streamed
    into its last value (an empty string in ``envelope``), never built whole in memory."""

    name: str
    content_type: str
    content: BlobContent
    envelope: Result | None = None


@dataclass(frozen=True)
class ActionContext:
    """What a handler may use: the caller, its transaction, the request's clock and files.

    Every action reads through ``db`` (prepared statements, see db.prepared); only
    actions registered with ``writes=True`` get ``work``: the unit of work (session,
    attachment batch, who acts) their services change things and record events in.
    """

    principal: Principal
    db: Db
    settings: Settings
    now: int
    today: date
    files: RequestFiles
    blob_store: BlobStore
    unit: Work | None = None
    # The request's attachments as complete incoming files (see ``Action.files``).
    attachments: list[IncomingFile] = field(default_factory=list)

    @property
    def work(self) -> Work:
        if self.unit is None:
            raise RuntimeError("this action is registered as read-only (writes=False)")
        return self.unit

    @property
    def session(self) -> Session:
        return self.work.session


@dataclass(frozen=True)
class Action(Generic[P, R]):
    name: str
    summary: str
    params: type[P]
    result: type[R]
    handler: Callable[[ActionContext, P], R | Shaped[R] | FileDownload]
    # The errors this action can answer besides the ones every request can (auth, body).
    errors: tuple[type[LedgerdeskError], ...] = ()
    # Writers take the database write lock up front (see db.engine).
    writes: bool = False
    # Takes attachments: multipart/form-data file parts and whatever the parameters
    # carry, turned into complete incoming files before the handler runs.
    files: Callable[[RequestFiles, P], list[IncomingFile]] | None = None
    # Honours an Idempotency-Key header (SPEC section 1).
    idempotent: bool = False
    # May answer with a file instead of the envelope (the result model is the envelope).
    returns_file: bool = False
    # Does blocking file I/O: runs in a worker thread even where reads run inline.
    offload: bool = False
    description: str = ""
    # Its answer changes with the moment, not only with the database (and the day): never
    # answered from the read cache.
    timely: bool = False

    @property
    def accepts_files(self) -> bool:
        """Whether multipart/form-data with file parts is accepted."""
        return self.files is not None

    @property
    def cacheable(self) -> bool:
        """Whether equal parameters on an unchanged database give an equal answer."""
        return not self.writes and not self.returns_file and not self.timely

    def parse(self, raw: dict[str, Any], settings: Settings) -> P:
        self._refuse_stray_attachments(raw)
        try:
            return self.params.model_validate(
                raw, context={"max_attachment_bytes": settings.max_attachment_bytes}
            )
        except ValidationError as exc:
            raise parameter_errors(exc) from None

    def _refuse_stray_attachments(self, raw: dict[str, Any]) -> None:
        """A field that looks like an attachment is stored or refused, never ignored.

        Unknown parameters are ignored (old clients send extras), but an ignored file is
        data lost without a word: ``attachment``, ``files[0]`` or ``attachments`` sent to
        an action that takes none are 1003s.
        """
        declared = self.params.model_fields
        for name in raw:
            if name in declared:
                continue  # attachmentId, or attachments where files are taken
            if _ATTACHMENT_LIKE.search(name):
                message = (
                    "attachments are sent as `attachments` (a list) or as multipart file parts"
                    if self.files is not None
                    else f"{self.name} takes no attachments"
                )
                raise invalid(name, message)


_ATTACHMENT_LIKE = re.compile(r"attach|^files?$", re.IGNORECASE)


class ActionRegistry:
    def __init__(self, actions: Iterable[Action[Any, Any]]) -> None:
        self._actions: dict[str, Action[Any, Any]] = {}
        for action in actions:
            if action.name in self._actions:
                raise ValueError(f"action {action.name!r} registered twice")
            self._actions[action.name] = action

    def get(self, name: object) -> Action[Any, Any] | None:
        return self._actions.get(name) if isinstance(name, str) else None

    def __iter__(self) -> Iterator[Action[Any, Any]]:
        return iter(self._actions.values())

    def names(self) -> list[str]:
        return list(self._actions)


def _in_our_words(kind: str, ctx: dict[str, Any]) -> str | None:
    """What pydantic says, as this API says it ("at most 10 items", not "List should have
    at most 10 items after validation, not 11")."""
    if kind == "missing":
        return "is required"
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters"
    if kind == "string_too_short":
        least = ctx["min_length"]
        return "must not be empty" if least == 1 else f"must be at least {least} characters"
    if kind == "too_long":
        return f"must hold at most {ctx['max_length']} items"
    if kind == "too_short":
        return f"must hold at least {ctx['min_length']} items"
    if kind in ("int_parsing", "int_type", "int_from_float", "int_parsing_size"):
        return "must be a whole number"
    if kind == "greater_than_equal":
        return f"must be at least {ctx['ge']}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    if kind == "string_type":
        return "must be a string"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return "must be an object"
    if kind == "list_type":
        return "must be a list"
    if kind == "string_pattern_mismatch":
        return "is not in the expected form"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', 'the listed values')}"
    return None


def parameter_errors(exc: ValidationError) -> InvalidParameters:
    """Every offending parameter of a failed validation, named as the wire names it."""
    errors = []
    for error in exc.errors(include_url=False):
        name = "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
        ).lstrip(".")
        if error["type"] == "value_error":
            message = str(error["ctx"]["error"])
        else:
            kind = error["type"]
            if kind in ("too_long", "too_short") and isinstance(error.get("input"), str):
                kind = f"string_{kind}"  # a text's limit, said by pydantic as "items"
            message = _in_our_words(kind, error.get("ctx") or {}) or (
                error["msg"][:1].lower() + error["msg"][1:]
            )
        errors.append(ParamError(name, message))
    names = ", ".join(dict.fromkeys(e.property for e in errors))
    return InvalidParameters(f"Invalid parameters: {names}.", errors)
