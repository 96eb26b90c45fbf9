"""Messages shown as safe Markdown: lists, code, links and line breaks as people write
them; never HTML, scripts, images or links to anything but the web and mail."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from ledgerdesk.runtime import Runtime
from ledgerdesk.web.display import markdown
from tests.factories import make_ticket
from tests.web.conftest import WebClient

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Line one\nline two", "<p>Line one<br />\nline two</p>\n"),
        ("- disk\n- cable", "<ul>\n<li>disk</li>\n<li>cable</li>\n</ul>\n"),
        ("```\nrm -rf <dir>\n```", "<pre><code>rm -rf &lt;dir&gt;\n</code></pre>\n"),
        (
            "see https://status.example/a?b=1",
            '<p>see <a href="https://status.example/a?b=1" rel="noopener noreferrer nofollow">'
            "https://status.example/a?b=1</a></p>\n",
        ),
        ("**bold** and `code`", "<p><strong>bold</strong> and <code>code</code></p>\n"),
    ],
)
def test_what_people_write_is_shown_as_they_mean_it(text: str, shown: str) -> None:
    assert str(markdown(text)) == shown


@pytest.mark.parametrize(
    "attack",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](vbscript:msgbox(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "![pixel](https://tracker.example/p.png)",
        '<a href="https://x.example" onclick="alert(1)">x</a>',
        '[x](https://ok.example" onmouseover="alert(1))',
    ],
)
def test_nothing_of_html_or_script_gets_through(attack: str) -> None:
    elements = Elements()
    elements.feed(str(markdown(attack)))
    for tag, attributes in elements.found:
        assert tag in ("p", "a", "em", "strong", "code"), tag
        for name, value in attributes:
            assert not name.startswith("on"), (tag, name)
            if name == "href":
                assert (value or "").startswith(("https:", "http:", "mailto:")), value


class Elements(HTMLParser):
    """Every element of some HTML, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


async def test_the_ticket_page_shows_messages_as_markdown_in_their_direction(
    runtime: Runtime, staff: WebClient, ann: tuple[int, WebClient]
) -> None:
    ann_id, customer = ann
    ticket_id = make_ticket(
        runtime, ann_id, content="Steps:\n\n1. reboot\n2. `dmesg`\n\n<b>not bold</b>"
    )
    for web, base in ((staff, "/console"), (customer, "/account")):
        page = (await web.get(f"{base}/tickets/{ticket_id}")).text
        assert '<div class="content markdown" dir="auto"><p>Steps:</p>' in page
        assert "<li><code>dmesg</code></li>" in page
        assert "&lt;b&gt;not bold&lt;/b&gt;" in page
