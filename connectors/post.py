"""A post from a source before it is matched to brands.

Sources that search or stream the open web (RSS, Reddit, Mastodon, Bluesky, HN,
X, the inbound webhook) see posts, not mentions: which brands a post is about
is decided by :class:`~connectors.brands.BrandMatcher`, and a post that names
two brands becomes two mentions.  Sources that already know the brand (file
replay, the simulator) yield :class:`~connectors.mention.Mention` directly.
"""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

from .mention import Mention


class Post(NamedTuple):
    source: str
    id: str
    """Unique within the source; the de-duplication key with ``source``."""
    text: str
    created_at: datetime
    """The source's own timestamp, timezone-aware."""
    author: str | None = None
    url: str | None = None
    lang: str | None = None
    reach: int | None = None
    """What the source offers as audience size: followers, score, karma."""
    is_repost: bool = False

    def mention(self, brand: str) -> Mention:
        return Mention(self.id, self.source, brand, self.text, self.created_at, self.author, self.url,
                       self.lang, self.reach, self.is_repost)
