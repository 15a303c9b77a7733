"""User-written text: Markdown rendered to HTML and sanitised with bleach against an allowlist.

Every app renders user text through :func:`render_markdown`; nothing else puts user input into
HTML unescaped.
"""

from __future__ import annotations

import html

import bleach
import markdown
from bleach.linkifier import DEFAULT_CALLBACKS

ALLOWED_TAGS = frozenset(
    {
        "a",
        "abbr",
        "blockquote",
        "br",
        "code",
        "del",
        "em",
        "h3",
        "h4",
        "h5",
        "hr",
        "li",
        "ol",
        "p",
        "pre",
        "strong",
        "ul",
    }
)
ALLOWED_ATTRIBUTES = {"a": ["href", "title"], "abbr": ["title"]}
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto", "tel"})
LINK_REL = "nofollow ugc noopener"


def _set_rel(attrs: dict, new: bool = False) -> dict:
    href_key = (None, "href")
    if href_key not in attrs:
        return attrs
    attrs[(None, "rel")] = LINK_REL
    return attrs


_cleaner = bleach.Cleaner(
    tags=ALLOWED_TAGS,
    attributes=ALLOWED_ATTRIBUTES,
    protocols=ALLOWED_PROTOCOLS,
    strip=True,
    strip_comments=True,
    filters=[
        lambda source: bleach.linkifier.LinkifyFilter(
            source,
            callbacks=[*DEFAULT_CALLBACKS, _set_rel],
            skip_tags={"pre", "code"},
            parse_email=False,
        )
    ],
)


def render_markdown(text: str) -> str:
    """Markdown → safe HTML: raw HTML in the source is escaped, links get ``rel`` set."""
    html = markdown.markdown(
        text or "",
        extensions=["sane_lists", "nl2br"],
        output_format="html",
    )
    # Raw HTML blocks inside Markdown pass through markdown untouched; bleach removes them.
    return _cleaner.clean(html)


def plain_text(text: str, limit: int | None = None) -> str:
    """Markdown source reduced to text (for e-mail subjects, SMS and feed summaries)."""
    cleaned = bleach.clean(render_markdown(text), tags=set(), strip=True)
    cleaned = " ".join(html.unescape(cleaned).split())
    if limit and len(cleaned) > limit:
        cleaned = cleaned[: limit - 1].rstrip() + "…"
    return cleaned
