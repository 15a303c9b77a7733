"""Nothing executable survives the thread pipeline (Markdown → HTML → bleach allowlist)."""

from __future__ import annotations

import html
from html.parser import HTMLParser

import pytest

from forums import services
from neighborhoods.text import ALLOWED_ATTRIBUTES, ALLOWED_PROTOCOLS, ALLOWED_TAGS
from tests import factories as f

pytestmark = pytest.mark.django_db

CORPUS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    '<img src=x onerror="alert(1)">',
    "<img src=x onerror=alert(1)//",
    '<body onload="alert(1)">',
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="JaVaScRiPt:alert(1)">click</a>',
    '<a href="jav&#x09;ascript:alert(1)">click</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    "[click](javascript:alert(1))",
    "[click](JAVASCRIPT:alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click](data:text/html,<script>alert(1)</script>)",
    '[click](https://ok.example "title\\" onmouseover=\\"alert(1))',
    "![img](javascript:alert(1))",
    '![x](https://img.example/x.png" onerror="alert(1))',
    "[x]: javascript:alert(1)\n\n[link][x]",
    "<https://ok.example/?q=<script>>",
    "<javascript:alert(1)>",
    '<svg onload="alert(1)"><circle r="1"/></svg>',
    "<svg><script>alert(1)</script></svg>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<iframe src="https://evil.example"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<form action="javascript:alert(1)"><input type=submit></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    "<style>body{background:red}</style>",
    '<p style="position:fixed;top:0">overlay</p>',
    "<!--<script>alert(1)</script>-->",
    "<![CDATA[<script>alert(1)</script>]]>",
    '<details open ontoggle="alert(1)">',
    '<a href="https://ok.example" onclick="alert(1)">ok</a>',
    '<a href="https://ok.example" target="_blank" rel="opener">ok</a>',
    '"><script>alert(1)</script>',
    "'';!--\"<XSS>=&{()}",
    "<<script>script>alert(1)<</script>/script>",
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    "```\n<script>alert(1)</script>\n```",
    "`<img src=x onerror=alert(1)>`",
    "> <script>alert(1)</script>",
    "* <a href=javascript:alert(1)>x</a>",
    '<base href="https://evil.example/">',
    "<template><script>alert(1)</script></template>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    '<a href="https://ok.example">fine</a> and www.plain.example and mailto:me@x.example',
]


class Inspector(HTMLParser):
    """Collects every element, attribute and URL of the rendered fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.text = []

    def handle_starttag(self, tag, attrs):
        if tag not in ALLOWED_TAGS:
            self.problems.append(f"tag <{tag}>")
        allowed = set(ALLOWED_ATTRIBUTES.get(tag, [])) | ({"rel"} if tag == "a" else set())
        for name, value in attrs:
            if name not in allowed:
                self.problems.append(f"attribute {name} on <{tag}>")
            if name == "href":
                scheme = html.unescape(value or "").strip().split(":", 1)
                named = len(scheme) == 2 and "/" not in scheme[0]
                if named and scheme[0].lower() not in ALLOWED_PROTOCOLS:
                    self.problems.append(f"href scheme {scheme[0]!r}")
            if name == "rel" and value != "nofollow ugc noopener":
                self.problems.append(f"rel={value!r}")

    handle_startendtag = handle_starttag


def inspect(fragment: str) -> list[str]:
    parser = Inspector()
    parser.feed(fragment)
    parser.close()
    lowered = html.unescape(fragment).lower()
    problems = list(parser.problems)
    # Text may show the payload as text; no markup may carry it.
    for marker in ("<script", "<svg", "<iframe", "<img", "<style", "<object", "<embed"):
        if marker in fragment.lower():
            problems.append(f"markup {marker!r}")
    if "javascript:" in "".join(a for a in lowered.split('"') if "href=" in a):
        problems.append("javascript: in an href")
    return problems


@pytest.fixture
def author():
    neighborhood = f.NeighborhoodFactory()
    return f.forum_member(neighborhood)


@pytest.mark.parametrize("payload", CORPUS)
def test_nothing_executable_survives_a_thread_or_a_reply(payload, author):
    neighborhood = author.neighborhood_memberships.get().neighborhood
    thread = f.thread(neighborhood, author=author, title="Safe title here", body=payload)
    assert inspect(thread.body_html) == [], thread.body_html
    reply = f.reply(thread, author=author, body=payload)
    assert inspect(reply.body_html) == [], reply.body_html
    published = services.reply_payload(reply)["body_html"]
    assert inspect(published) == []


def test_the_corpus_is_not_vacuous(author):
    """The inspector does flag raw payloads, so a pass above means something."""
    flagged = [p for p in CORPUS if inspect(p)]
    assert len(flagged) >= 30


def test_titles_tags_and_excerpts_are_plain_text_in_payloads(author):
    neighborhood = author.neighborhood_memberships.get().neighborhood
    thread = f.thread(
        neighborhood,
        author=author,
        title='<img src=x onerror="alert(1)"> light out',
        body="<script>alert(1)</script> **dark**",
    )
    payload = services.thread_payload(thread)
    assert payload["title"] == '<img src=x onerror="alert(1)"> light out'  # escaped on output
    assert "<" not in payload["excerpt"] and "dark" in payload["excerpt"]
