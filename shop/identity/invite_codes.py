"""Invite codes: what a member shares, short enough for a mini-program QR code's `scene`.

A code is 8 characters drawn at random (`secrets`) from 32 upper-case letters and digits without
the look-alikes 0/O and 1/I, so codes are never guessable in sequence and can be read aloud or
typed: 32^8 = 2^40 codes per merchant. Codes are unique within a merchant (the unique constraint
(merchant_id, invite_code)); `members.login_with_wx_code` retries on the rare collision.

The share convention (what the mini-program puts in a share card or a QR code):
- share card: `path` = "pages/index/index?invite=<code>" (the page reads `options.invite`);
- QR code (wxacode.getUnlimited): `page` = "pages/index/index", `scene` = "i=<code>" (the page
  reads `decodeURIComponent(options.scene)` and takes the value after "i=").
Both fit WeChat's limits: a scene of at most 32 visible characters from 0-9A-Za-z and
!#$&'()*+,/:;=?@-._~ (ours is 10: "i=" and 8 code characters) and a path of at most 128 bytes.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
LENGTH = 8
CODE_PATTERN = re.compile(f"[{ALPHABET}]{{{LENGTH}}}")

SHARE_PAGE = "pages/index/index"
SCENE_PREFIX = "i="
SCENE_MAX_LENGTH = 32
SCENE_CHARACTERS = re.compile(r"[0-9A-Za-z!#$&'()*+,/:;=?@\-._~]{1,32}")
PATH_MAX_BYTES = 128


def new_invite_code() -> str:
    """A fresh random code (unique within the merchant only once the database accepts it)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalize(code: str) -> str | None:
    """The code as stored, from what a member sent (case does not matter: codes are read aloud and
    typed), or None when it cannot be a code at all."""
    code = code.upper()
    return code if CODE_PATTERN.fullmatch(code) else None


def share_payload(code: str) -> dict[str, str]:
    """What the mini-program puts in a share card (`path`) or a QR code (`page` + `scene`)."""
    return {"path": f"{SHARE_PAGE}?invite={code}", "page": SHARE_PAGE, "scene": f"{SCENE_PREFIX}{code}"}
