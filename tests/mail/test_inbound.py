"""Reading received mail: every shape of the corpus gives what it must, and nothing a
sender can do makes reading raise anything but ``Unreadable``."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledgerdesk.mail.inbound import Unreadable, read, reply_of
from tests.mail.corpus import CASES, OUR_ID, Case


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_corpus_reads_as_expected(case: Case) -> None:
    if case.unreadable is not None:
        with pytest.raises(Unreadable, match=case.unreadable):
            read(case.raw)
        return
    mail = read(case.raw)
    if case.reply is not None:
        assert mail.reply == case.reply
    for quoted in case.not_in_reply:
        assert quoted not in mail.reply
        assert quoted in mail.text or "<blockquote>" in case.raw.decode("utf-8", "replace")
    if "contains" in case.extra:
        assert case.extra["contains"] in mail.reply
    assert tuple(f.name for f in mail.files) == case.files
    if case.automatic is None:
        assert mail.automatic is None
    else:
        assert mail.automatic is not None
        assert case.automatic.lower() in mail.automatic.lower()
    assert (mail.bounced_id == OUR_ID) is case.bounced
    for name in ("sender", "sender_name", "subject"):
        if name in case.extra:
            assert getattr(mail, name) == case.extra[name]


def test_the_corpus_is_large_enough() -> None:
    assert len(CASES) >= 40


def test_threading_ids_nearest_first() -> None:
    raw = (
        b"From: a@example.com\nMessage-ID: <m3@x>\nIn-Reply-To: <m2@x>\n"
        b"References: <m0@x> <m1@x>\n <m2@x>\n\nhi\n"
    )
    assert read(raw).thread_ids == ("m2@x", "m1@x", "m0@x")


def test_files_keep_their_bytes_and_types() -> None:
    [case] = [c for c in CASES if c.name.startswith("nested")]
    image, pdf = read(case.raw).files
    assert (image.content_type, image.inline, image.content_id) == ("image/png", True, "shot1")
    assert image.data.startswith(b"\x89PNG")
    assert (pdf.content_type, pdf.inline) == ("application/pdf", False)
    assert pdf.data.startswith(b"%PDF")


def test_nothing_is_lost_when_the_reply_parser_finds_only_quotes() -> None:
    assert reply_of("> only a quote\n> and more") != ""


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_any_bytes_are_read_or_refused_with_a_reason(raw: bytes) -> None:
    with contextlib.suppress(Unreadable):
        read(b"From: a@example.com\n" + raw)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_any_text_body_keeps_what_the_sender_wrote_first(body: str) -> None:
    mail = read(
        ("From: a@example.com\nContent-Type: text/plain; charset=utf-8\n\n" + body).encode()
    )
    first = next((line.strip() for line in mail.text.splitlines() if line.strip()), "")
    if first and not first.startswith(">"):
        assert mail.reply
