"""Plain text from the HTML that feeds and APIs return (RSS summaries, HN comments, Mastodon statuses).

Tags are dropped, entities decoded, block elements become line breaks
(paragraphs a blank line), script/style contents are skipped, and runs of
whitespace are tidied.  One implementation for every connector.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = {"p", "br", "div", "li", "ul", "ol", "tr", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6",
          "article", "section", "header", "footer", "table", "hr", "dd", "dt", "figure", "figcaption"}
_SKIP = {"script", "style", "template", "noscript"}


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag in _BLOCK:
            self.out.append("\n\n" if tag == "p" else "\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data)


def html_to_text(markup: str) -> str:
    """Plain text from an HTML fragment: tags dropped, entities decoded, whitespace tidied."""
    if not markup:
        return ""
    parser = _TextOnly()
    parser.feed(markup)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.out).split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
