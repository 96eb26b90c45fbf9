# ruff: noqa: E501 (raw mail, as it arrives, is data: its lines are kept whole)
"""Received mail in the shapes real clients and servers send, each with what reading it
must give. Raw bytes as they arrive (CRLF or LF, odd charsets, folded headers)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

OUR_ID = "ld.42.7.a1b2c3d4e5f6.SIG@support.hosting.example"  # replaced by a signed one


@dataclass(frozen=True)
class Case:
    name: str
    raw: bytes
    reply: str | None = None  # the reply text expected (None: not checked)
    not_in_reply: tuple[str, ...] = ()  # quoted history that must be gone
    files: tuple[str, ...] = ()  # file names expected, in order
    automatic: str | None = None  # a word of the reason expected, or None: not automatic
    bounced: bool = False
    unreadable: str | None = None  # a word of the refusal expected
    extra: dict[str, str] = field(default_factory=dict)


def _b64(data: bytes) -> str:
    return base64.encodebytes(data).decode()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

HEAD = (
    "From: Ann Example <ann@example.com>\n"
    "To: Hosting Support <support@hosting.example>\n"
    "Date: Mon, 30 Nov 2026 12:05:00 +0100\n"
    "Message-ID: <{mid}@mail.example.com>\n"
)


def head(mid: str, subject: str = "Re: [#482913] Server unreachable", extra: str = "") -> str:
    return HEAD.format(mid=mid) + f"Subject: {subject}\n" + extra


CASES: list[Case] = [
    Case(
        "gmail reply, alternative parts, On ... wrote",
        (
            head("gmail1", extra=f"In-Reply-To: <{OUR_ID}>\nReferences: <{OUR_ID}>\n")
            + 'MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary="b1"\n\n'
            "--b1\nContent-Type: text/plain; charset=UTF-8\n\n"
            "Thanks, the server is back.\n\n"
            "On Mon, Nov 30, 2026 at 12:00 PM Hosting Support <support@hosting.example> wrote:\n\n"
            "> We replaced the disk.\n>\n> Sam\n\n"
            "--b1\nContent-Type: text/html; charset=UTF-8\n\n"
            "<div>Thanks, the server is back.</div><div class=gmail_quote>On Mon... wrote:"
            "<blockquote>We replaced the disk.</blockquote></div>\n"
            "--b1--\n"
        ).encode(),
        reply="Thanks, the server is back.",
        not_in_reply=("We replaced the disk.",),
    ),
    Case(
        "outlook reply in German, HTML only",
        (
            head("outlook1", "AW: [#482913] Server unreachable")
            + "MIME-Version: 1.0\nContent-Type: text/html; charset=windows-1252\n"
            "Content-Transfer-Encoding: quoted-printable\n\n"
            "<html><body><p>Danke f=FCr die schnelle Hilfe!</p>"
            "<div><p><b>Von:</b> Hosting Support &lt;support@hosting.example&gt;<br>"
            "<b>Gesendet:</b> Montag, 30. November 2026 12:00<br>"
            "<b>An:</b> Ann &lt;ann@example.com&gt;<br><b>Betreff:</b> [#482913] Server"
            "</p></div><p>We replaced the disk.</p></body></html>\n"
        ).encode(),
        reply="Danke für die schnelle Hilfe!",
        not_in_reply=("We replaced the disk.",),
    ),
    Case(
        "apple mail reply with a signature",
        (
            head("apple1")
            + "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n"
            "Still down from here.\n\nSent from my iPhone\n\n"
            "> On 30. Nov 2026, at 12:00, Hosting Support <support@hosting.example> wrote:\n"
            ">\n> We replaced the disk.\n"
        ).encode(),
        reply=None,
        not_in_reply=("We replaced the disk.",),
        extra={"contains": "Still down from here."},
    ),
    Case(
        "thunderbird reply, format=flowed, CRLF",
        (
            head("tb1") + "Content-Type: text/plain; charset=UTF-8; format=flowed\n"
            "Content-Transfer-Encoding: 8bit\n\n"
            "Works again, thank you.\n\n"
            "Am 30.11.26 um 12:00 schrieb Hosting Support:\n> We replaced the disk.\n"
        )
        .replace("\n", "\r\n")
        .encode(),
        reply="Works again, thank you.",
        not_in_reply=("We replaced the disk.",),
    ),
    Case(
        "latin-1 body without quotes",
        (
            head("latin1", "Frage zur Rechnung") + "Content-Type: text/plain; charset=iso-8859-1\n"
            "Content-Transfer-Encoding: 8bit\n\n"
        ).encode()
        + "Grüße aus Köln, die Rechnung stimmt nicht.\n".encode("latin-1"),
        reply="Grüße aus Köln, die Rechnung stimmt nicht.",
    ),
    Case(
        "a charset nobody knows",
        (head("unknown", "Hello") + "Content-Type: text/plain; charset=x-made-up\n\n").encode()
        + b"caf\xe9 ok\n",
        reply="café ok",
    ),
    Case(
        "shift_jis",
        (
            head("sjis", "=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=")
            + "Content-Type: text/plain; charset=shift_jis\n\n"
        ).encode()
        + "サーバーが止まりました。\n".encode("shift_jis"),
        reply="サーバーが止まりました。",
    ),
    Case(
        "attachment named in RFC 2231",
        (
            head("rfc2231", "Invoice question")
            + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="m"\n\n'
            "--m\nContent-Type: text/plain; charset=utf-8\n\nSee the file.\n"
            "--m\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment;\n filename*0*=UTF-8''%C3%84nnual%20;\n"
            " filename*1*=report.pdf\n\n" + _b64(PDF) + "--m--\n"
        ).encode(),
        reply="See the file.",
        files=("Ännual report.pdf",),
    ),
    Case(
        "attachment named by an encoded word",
        (
            head("encword", "Logs")
            + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="m"\n\n'
            "--m\nContent-Type: text/plain\n\nLogs attached.\n"
            '--m\nContent-Type: text/plain; name="=?UTF-8?B?bMO2Zy50eHQ=?="\n'
            'Content-Disposition: attachment; filename="=?UTF-8?B?bMO2Zy50eHQ=?="\n\n'
            "line 1\n--m--\n"
        ).encode(),
        files=("lög.txt",),
    ),
    Case(
        "nested: mixed > related > alternative, inline image and a PDF",
        (
            head("nested", "Screenshot")
            + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="o"\n\n'
            '--o\nContent-Type: multipart/related; boundary="r"\n\n'
            '--r\nContent-Type: multipart/alternative; boundary="a"\n\n'
            "--a\nContent-Type: text/plain\n\nSee the screenshot.\n"
            '--a\nContent-Type: text/html\n\n<p>See the screenshot.<img src="cid:shot1"></p>\n'
            "--a--\n"
            "--r\nContent-Type: image/png\nContent-ID: <shot1>\n"
            "Content-Transfer-Encoding: base64\n\n" + _b64(PNG) + "--r--\n"
            "--o\nContent-Type: application/pdf; name=contract.pdf\n"
            "Content-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment; filename=contract.pdf\n\n" + _b64(PDF) + "--o--\n"
        ).encode(),
        reply="See the screenshot.",
        files=("attachment-1.png", "contract.pdf"),
    ),
    Case(
        "forwarded mail as an attachment",
        (
            head("fwd", "Fwd: abuse report")
            + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="f"\n\n'
            "--f\nContent-Type: text/plain\n\nPlease look at this.\n"
            "--f\nContent-Type: message/rfc822\n\n"
            "From: abuse@other.example\nTo: ann@example.com\nSubject: abuse\n"
            "Message-ID: <inner@other.example>\n\nYour server sends spam.\n--f--\n"
        ).encode(),
        reply="Please look at this.",
        files=("attachment-1.eml",),
    ),
    Case(
        "forwarded inline",
        (
            head("fwdinline", "Fwd: maintenance")
            + "Content-Type: text/plain\n\nFYI, is this you?\n\n"
            "---------- Forwarded message ---------\nFrom: noc@dc.example\n"
            "Date: Mon, 30 Nov 2026\nSubject: maintenance\n\nRack 12 power work tonight.\n"
        ).encode(),
        extra={"contains": "FYI, is this you?"},
    ),
    Case(
        "calendar invite",
        (
            head("ics", "Invitation: maintenance window")
            + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="c"\n\n'
            '--c\nContent-Type: multipart/alternative; boundary="ca"\n\n'
            "--ca\nContent-Type: text/plain\n\nYou are invited.\n"
            "--ca\nContent-Type: text/calendar; method=REQUEST; charset=UTF-8\n\n"
            "BEGIN:VCALENDAR\nMETHOD:REQUEST\nEND:VCALENDAR\n--ca--\n"
            "--c\nContent-Type: application/ics; name=invite.ics\n"
            "Content-Disposition: attachment; filename=invite.ics\n\n"
            "BEGIN:VCALENDAR\nEND:VCALENDAR\n--c--\n"
        ).encode(),
        reply="You are invited.",
        files=("attachment-1.ics", "invite.ics"),
    ),
    Case(
        "S/MIME signed",
        (
            head("smime", "Signed")
            + 'MIME-Version: 1.0\nContent-Type: multipart/signed; protocol="application/'
            'pkcs7-signature"; micalg=sha-256; boundary="s"\n\n'
            "--s\nContent-Type: text/plain\n\nSigned and sealed.\n"
            "--s\nContent-Type: application/pkcs7-signature; name=smime.p7s\n"
            "Content-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment; filename=smime.p7s\n\nMIIGsgYJKoZIhvcNAQcCoIIGozCCBp8=\n"
            "--s--\n"
        ).encode(),
        reply="Signed and sealed.",
        files=(),
    ),
    Case(
        "plain text and no quotes at all",
        (head("plain", "Disk full") + "\nThe disk on web01 is full.\n").encode(),
        reply="The disk on web01 is full.",
    ),
    Case(
        "empty body with an attachment",
        (
            head("empty", "scan")
            + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="e"\n\n'
            "--e\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=scan.pdf\n"
            "Content-Transfer-Encoding: base64\n\n" + _b64(PDF) + "--e--\n"
        ).encode(),
        reply="",
        files=("scan.pdf",),
    ),
    Case(
        "out-of-office (Auto-Submitted)",
        (
            head(
                "ooo",
                "Automatic reply: [#482913] Server unreachable",
                "Auto-Submitted: auto-replied\n",
            )
            + "\nI am out of the office until Monday.\n"
        ).encode(),
        automatic="auto-replied",
    ),
    Case(
        "Exchange out-of-office",
        (
            head(
                "exch",
                "Automatische Antwort: Server",
                "X-MS-Exchange-Inbox-Rules-Loop: ann@example.com\nX-Auto-Response-Suppress: All\n",
            )
            + "\nBin nicht da.\n"
        ).encode(),
        automatic="Exchange",
    ),
    Case(
        "vacation responder (X-Autoreply)",
        (head("vac", "Away", "X-Autoreply: yes\n") + "\nOn holiday.\n").encode(),
        automatic="Autoreply",
    ),
    Case(
        "Precedence: bulk",
        (head("bulk", "Newsletter", "Precedence: bulk\n") + "\nNews.\n").encode(),
        automatic="bulk",
    ),
    Case(
        "Precedence: junk",
        (head("junk", "Hi", "Precedence: junk\n") + "\nx\n").encode(),
        automatic="junk",
    ),
    Case(
        "mailing list",
        (
            head(
                "list",
                "[ops] weekly",
                "List-Id: <ops.lists.example.com>\n"
                "List-Unsubscribe: <mailto:leave@lists.example.com>\n",
            )
            + "\nWeekly digest.\n"
        ).encode(),
        automatic="mailing list",
    ),
    Case(
        "delivery status notification of our mail",
        (
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\n"
            "To: support@hosting.example\nSubject: Undelivered Mail Returned to Sender\n"
            "Message-ID: <dsn1@mx.example.com>\nAuto-Submitted: auto-replied\n"
            "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;"
            ' boundary="d"\n\n'
            "--d\nContent-Type: text/plain\n\nThis is the mail system. Your message could not be delivered.\n"
            "--d\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"
            "Final-Recipient: rfc822; gone@example.com\nAction: failed\nStatus: 5.1.1\n"
            "--d\nContent-Type: text/rfc822-headers\n\n"
            f"From: support@hosting.example\nTo: gone@example.com\nMessage-ID: <{OUR_ID}>\n"
            "Subject: [#482913] Server unreachable\n--d--\n"
        ).encode(),
        automatic="auto-replied",
        bounced=True,
    ),
    Case(
        "bounce with the whole message attached",
        (
            "From: postmaster@mx.example.org\nTo: support@hosting.example\n"
            "Subject: Delivery Status Notification (Failure)\nMessage-ID: <dsn2@mx.example.org>\n"
            "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;"
            ' boundary="d"\n\n'
            "--d\nContent-Type: text/plain\n\nDelivery failed.\n"
            "--d\nContent-Type: message/delivery-status\n\nFinal-Recipient: rfc822; x@example.org\n"
            "Action: failed\n"
            "--d\nContent-Type: message/rfc822\n\n"
            f"From: support@hosting.example\nMessage-ID: <{OUR_ID}>\nSubject: hi\n\nbody\n--d--\n"
        ).encode(),
        automatic="delivery report",
        bounced=True,
        files=("attachment-1.eml",),
    ),
    Case(
        "mailer-daemon without a report",
        (
            b"From: MAILER-DAEMON@old.example\nTo: support@hosting.example\n"
            b"Subject: failure notice\nMessage-ID: <qmail@old.example>\n\n"
            b"Hi. This is the qmail-send program. I'm afraid I wasn't able to deliver.\n"
        ),
        automatic="mailer-daemon",
    ),
    Case(
        "empty return path",
        (
            b"Return-Path: <>\nFrom: notifications@service.example\nTo: support@hosting.example\n"
            b"Subject: notice\nMessage-ID: <rp@service.example>\n\nsomething\n"
        ),
        automatic="empty return path",
    ),
    Case(
        "read receipt (disposition notification)",
        (
            head("mdn", "Read: [#482913] Server unreachable")
            + "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=disposition-notification;"
            ' boundary="n"\n\n'
            "--n\nContent-Type: text/plain\n\nYour message was read.\n"
            "--n\nContent-Type: message/disposition-notification\n\nDisposition: manual-action/MDN-sent-manually; displayed\n--n--\n"
        ).encode(),
        automatic="delivery report",
    ),
    Case(
        "Auto-Submitted: no is a person",
        (head("autono", "Hello", "Auto-Submitted: no\n") + "\nA person wrote this.\n").encode(),
        reply="A person wrote this.",
    ),
    Case(
        "no sender at all",
        b"To: support@hosting.example\nSubject: who?\n\nanonymous\n",
        unreadable="no sender",
    ),
    Case(
        "not a message",
        b"\x00\x01\x02 garbage without headers",
        unreadable="no sender",
    ),
    Case(
        "parts nested too deep",
        (
            head("deep", "deep")
            + "MIME-Version: 1.0\n"
            + "".join(
                f'Content-Type: multipart/mixed; boundary="n{i}"\n\n--n{i}\n' for i in range(25)
            )
            + "Content-Type: text/plain\n\nbottom\n"
        ).encode(),
        unreadable="deep",
    ),
    Case(
        "too many parts",
        (
            head("many", "many")
            + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="p"\n\n'
            + "".join("--p\nContent-Type: text/plain\n\nx\n" for _ in range(600))
            + "--p--\n"
        ).encode(),
        unreadable="parts",
    ),
    Case(
        "broken base64 attachment",
        (
            head("b64", "broken")
            + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="x"\n\n'
            "--x\nContent-Type: text/plain\n\nsee file\n"
            "--x\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
            "Content-Disposition: attachment; filename=data.bin\n\n!!!not base64!!!\n--x--\n"
        ).encode(),
        reply="see file",
        files=("data.bin",),
    ),
    Case(
        "missing closing boundary",
        (
            head("noclose", "cut")
            + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="q"\n\n'
            "--q\nContent-Type: text/plain\n\nthe end is missing\n"
        ).encode(),
        reply="the end is missing",
    ),
    Case(
        "a file name with a path and control characters",
        (
            head("path", "file")
            + 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="z"\n\n'
            "--z\nContent-Type: text/plain\n\nfile\n"
            '--z\nContent-Type: text/plain\nContent-Disposition: attachment; filename="../../etc/passwd\x07"\n\n'
            "root\n--z--\n"
        ).encode(),
        files=(".._.._etc_passwd",),
    ),
    Case(
        "HTML with a signature block",
        (
            head("htmlsig", "Question") + "Content-Type: text/html; charset=utf-8\n\n"
            "<p>Can you raise my quota?</p><p>--&nbsp;<br>Ann Example<br>CTO, Example Ltd</p>\n"
        ).encode(),
        extra={"contains": "Can you raise my quota?"},
    ),
    Case(
        "Outlook 'Original Message' separator",
        (
            head("origmsg", "RE: [#482913] Server unreachable")
            + "Content-Type: text/plain\n\nConfirmed, thanks.\n\n"
            "-----Original Message-----\nFrom: Hosting Support <support@hosting.example>\n"
            "Sent: Monday, November 30, 2026 12:00 PM\nTo: Ann\nSubject: [#482913]\n\n"
            "We replaced the disk.\n"
        ).encode(),
        reply="Confirmed, thanks.",
        not_in_reply=("We replaced the disk.",),
    ),
    Case(
        "French client reply header",
        (
            head("fr", "RE: serveur")
            + "Content-Type: text/plain; charset=utf-8\n\nMerci beaucoup.\n\n"
            "Le lun. 30 nov. 2026 à 12:00, Hosting Support <support@hosting.example> a écrit :\n"
            "> We replaced the disk.\n"
        ).encode(),
        reply="Merci beaucoup.",
        not_in_reply=("We replaced the disk.",),
    ),
    Case(
        "Dutch client reply header",
        (
            head("nl", "RE: server")
            + "Content-Type: text/plain; charset=utf-8\n\nDank je, het werkt.\n\n"
            "Op ma 30 nov. 2026 om 12:00 schreef Hosting Support <support@hosting.example>:\n"
            "> We replaced the disk.\n"
        ).encode(),
        reply="Dank je, het werkt.",
        not_in_reply=("We replaced the disk.",),
    ),
    Case(
        "folded subject and encoded sender name",
        (
            b"From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <Juergen@Example.COM>\n"
            b"To: support@hosting.example\nMessage-ID: <fold@example.com>\n"
            b"Subject: =?UTF-8?Q?Server_in_K=C3=B6ln?=\n =?UTF-8?Q?_ist_weg?=\n\nHilfe!\n"
        ),
        reply="Hilfe!",
        extra={
            "sender": "juergen@example.com",
            "sender_name": "Jürgen Müller",
            "subject": "Server in Köln ist weg",
        },
    ),
]
