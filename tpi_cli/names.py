"""Names of sites, drugs and sides as people type them.

Names match case-insensitively, with ``-`` and ``_`` read as spaces. A site text may carry a side
word anywhere (``"left trapezius"``, ``"L trap"``, ``"trapezius (R)"``): it is parsed out.
"""

from __future__ import annotations

import re

from tpi_cli.errors import quote

LEFT, RIGHT, BILATERAL = "left", "right", "bilateral"

SIDE_WORDS: dict[str, str] = {
    "left": LEFT, "l": LEFT, "lt": LEFT,
    "right": RIGHT, "r": RIGHT, "rt": RIGHT,
    "bilateral": BILATERAL, "b": BILATERAL, "bilat": BILATERAL, "both": BILATERAL,
}
# Words that say the side is not known: the injection then counts against both sides.
UNKNOWN_SIDE_WORDS = frozenset({"unknown", "unspecified"})

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def normalize(text: str) -> str:
    """The lookup key of a name: lower case, words joined by single spaces."""
    return " ".join(tokens(text))


def parse_side(text: str) -> str | None:
    """A side column value: ``left/right/bilateral``, ``L/R/B``; empty means unspecified."""
    key = text.strip().lower()
    if not key or key in UNKNOWN_SIDE_WORDS:
        return None
    side = SIDE_WORDS.get(key)
    if side is None:
        raise ValueError(f"unknown side {quote(text.strip())}: use left, right, bilateral (L, R, B) or leave empty")
    return side


def split_site_side(text: str) -> tuple[str, str | None]:
    """Split a site text into its lookup key and the side word it carries, if any."""
    words = tokens(text)
    side: str | None = None
    rest: list[str] = []
    for word in words:
        found = SIDE_WORDS.get(word)
        if found is None:
            rest.append(word)
            continue
        if side is not None and side != found:
            raise ValueError(f"site {quote(text.strip())} names two sides")
        side = found
    return " ".join(rest), side


def site_label(site: str, side: str | None, lateral: bool = True) -> str:
    """``left trapezius``, ``trapezius (side unspecified)``, ``interspinous-lumbar``."""
    if not lateral:
        return site
    if side is None:
        return f"{site} (side unspecified)"
    return f"{side} {site}"
