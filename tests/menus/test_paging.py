"""Paging: long lines split between words, and the memoised pages identical to a fresh paging."""

from __future__ import annotations

from menus.paging import gsm_safe, paginate, screen_pages
from notifications.sms.encoding import gsm7_length


def test_a_long_line_is_split_after_the_last_whole_word_that_fits():
    words = [f"word{number}" for number in range(40)]
    pages = paginate([" ".join(words)], 60, "98 More", "")
    assert all(gsm7_length(page) <= 60 for page in pages)
    heads = [page.removesuffix("\n98 More") for page in pages[:-1]]
    assert " ".join([*heads, pages[-1]]).split() == words
    first = heads[0]
    next_word = words[len(first.split())]
    assert gsm7_length(f"{first} {next_word}") > 60 - gsm7_length("\n98 More")


def test_extension_characters_count_twice_when_splitting():
    line = "{a} " * 30
    for page in paginate([line], 40, "98 More", "0 Back"):
        assert gsm7_length(page) <= 40


def test_memoised_pages_are_the_pages_of_the_safe_lines():
    lines = ("Title with an emoji \u263a", "1 " + "long option text " * 12, "2 Short")
    footers = ("98 More\n0 Back", "0 Back")
    expected = paginate([gsm_safe(line) for line in lines], 150, *footers)
    assert screen_pages(lines, 150, *footers) == tuple(expected)
    assert screen_pages(lines, 150, *footers) is screen_pages(lines, 150, *footers)
