"""mask_name: how a buyer is shown to other people."""

from __future__ import annotations

import pytest

from shop.core.masking import ANONYMOUS, mask_name, visible_characters

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 👨‍👩‍👧, one emoji of five code points
THUMB_DARK = "\U0001f44d\U0001f3ff"  # 👍🏿, an emoji with its skin tone
FLAG_CN = "\U0001f1e8\U0001f1f3"  # 🇨🇳, two regional indicators
E_ACUTE = "e\u0301"  # é as a letter and a combining accent


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("张三丰", "张*丰"),
        ("张三", "张*"),
        ("张", "*"),
        ("欧阳娜娜", "欧**娜"),
        ("Alice", "A***e"),
        ("Al", "A*"),
        ("A", "*"),
        ("Li Lei", "L****i"),  # a space inside is part of the name, masked like the rest
        ("  张三丰 ", "张*丰"),  # surrounding whitespace is ignored
        ("\u3000张三丰\u3000", "张*丰"),  # the full-width space too
        ("\u200b张三丰\u200b", "张*丰"),  # and zero-width characters
        ("\t\n", ANONYMOUS),
        ("", ANONYMOUS),
        (None, ANONYMOUS),
        ("\u200b", ANONYMOUS),
        ("🐼", "*"),
        ("🐼熊猫", "🐼*猫"),
        (f"{FAMILY}小明", f"{FAMILY}*明"),  # a ZWJ sequence stays whole
        (f"小{FAMILY}", "小*"),
        (f"{THUMB_DARK}ok{THUMB_DARK}", f"{THUMB_DARK}**{THUMB_DARK}"),  # the skin tone stays with its emoji
        (f"{FLAG_CN}王五", f"{FLAG_CN}*五"),  # a flag is one character
        (f"Ren{E_ACUTE}", "R**" + E_ACUTE),  # the accent stays with its letter
        ("Maximilian Alexander", "M******r"),  # at most six stars
    ],
)
def test_a_name_is_shown_with_its_first_and_last_characters_only(name, shown):
    assert mask_name(name) == shown


def test_the_name_for_nobody_can_be_chosen():
    assert mask_name("   ", anonymous="神秘买家") == "神秘买家"


@pytest.mark.parametrize(
    ("text", "count"),
    [("张三丰", 3), (FAMILY, 1), (THUMB_DARK, 1), (FLAG_CN + FLAG_CN, 2), (E_ACUTE * 2, 2), ("", 0)],
)
def test_visible_characters_keep_what_a_reader_sees_as_one_together(text, count):
    assert len(visible_characters(text)) == count
    assert "".join(visible_characters(text)) == text
