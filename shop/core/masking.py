"""Showing a buyer to other people (a group's members, a distributor's commissions, a ranking)
without showing their name: `mask_name`."""

from __future__ import annotations

import unicodedata

ANONYMOUS = "匿名"
MAX_STARS = 6  # a long name does not become a long row of stars

_ZWJ = "\u200d"


def _is_extender(char: str) -> bool:
    """Characters that belong to the one before them on screen: combining marks, variation
    selectors, emoji skin tones and tag characters (flags of regions)."""
    code = ord(char)
    return (
        unicodedata.combining(char) != 0
        or unicodedata.category(char) in ("Mn", "Me", "Mc")
        or 0xFE00 <= code <= 0xFE0F
        or 0xE0100 <= code <= 0xE01EF
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
    )


def _is_regional_indicator(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def visible_characters(text: str) -> list[str]:
    """`text` split into what a reader sees as one character each: an emoji with its skin tone or
    its ZWJ sequence (a family), a flag (two regional indicators), a letter with its combining
    accents. Close to Unicode's grapheme clusters for names, without a dependency."""
    clusters: list[str] = []
    joining = False
    for char in text:
        if clusters and (joining or _is_extender(char) or char == _ZWJ):
            clusters[-1] += char
            joining = char == _ZWJ
            continue
        if (
            clusters
            and _is_regional_indicator(char)
            and len(clusters[-1]) == 1
            and _is_regional_indicator(clusters[-1])
        ):
            clusters[-1] += char
            continue
        clusters.append(char)
        joining = False
    return clusters


def _invisible(cluster: str) -> bool:
    """A cluster of only whitespace, control or format characters (e.g. a zero-width space)."""
    return all(char.isspace() or unicodedata.category(char) in ("Cc", "Cf", "Zs") for char in cluster)


def mask_name(name: str | None, *, anonymous: str = ANONYMOUS) -> str:
    """The name with all but its first and last visible characters as stars: "张三丰" -> "张*丰",
    "Alice" -> "A***e", "张三" -> "张*", one character -> "*". Surrounding whitespace and
    invisible characters are ignored; nothing visible left (None, "", spaces) -> `anonymous`.
    At most MAX_STARS stars, so a long name does not show its length."""
    clusters = visible_characters(name or "")
    while clusters and _invisible(clusters[0]):
        clusters.pop(0)
    while clusters and _invisible(clusters[-1]):
        clusters.pop()
    if not clusters:
        return anonymous
    if len(clusters) == 1:
        return "*"
    if len(clusters) == 2:
        return clusters[0] + "*"
    return clusters[0] + "*" * min(len(clusters) - 2, MAX_STARS) + clusters[-1]
