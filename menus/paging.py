"""Fitting screens to a feature phone: only GSM 03.38 characters, and pages no longer than the network allows.

Lengths are counted in GSM-7 septets (`gsm7_length`): an extension character such as `{` or `€` costs two.

Paging is the costliest part of rendering and its result depends only on the lines and the widths, so
`screen_pages` keeps recent results: the catalogue texts never change while a process runs, so nearly every hop
finds its screen already paged.
"""

from __future__ import annotations

from functools import lru_cache

from notifications.sms.encoding import GSM7_BASIC, GSM7_EXTENDED, gsm7_length

# What a character outside GSM 03.38 is shown as. Only text we did not write can contain one (a name typed by
# staff, say): our own catalogues are checked by the tests.
REPLACEMENT_CHARACTER = "?"
# Control characters that are in the GSM alphabet but would garble a USSD screen.
_SCREEN_UNSAFE = frozenset("\r\x1b\f")
# A line up to this long is moved whole to the next page rather than split mid-sentence (menu options, titles).
KEEP_WHOLE_MAX_CHARS = 48
# Paged screens kept per process. Menus and information screens are catalogue text (a few hundred distinct
# screens over both languages and their reasons); screens that show a caller's own answers (confirm, details,
# status) take one entry each and age out first. A few hundred kilobytes at most.
PAGE_CACHE_SIZE = 2048


def gsm_safe(text: str) -> str:
    """`text` with every character a feature phone cannot show replaced, keeping line breaks."""
    return "".join(
        char if (char in GSM7_BASIC or char in GSM7_EXTENDED) and char not in _SCREEN_UNSAFE else REPLACEMENT_CHARACTER
        for char in text
    )


@lru_cache(maxsize=PAGE_CACHE_SIZE)
def screen_pages(lines: tuple[str, ...], limit: int, more_footer: str, last_footer: str) -> tuple[str, ...]:
    """The pages of a screen whose `lines` may hold characters a phone cannot show; memoised (see the module doc).

    Takes and returns tuples: the arguments must be hashable, and the cached pages are shared between threads, so
    no caller may change them.
    """
    return tuple(paginate([gsm_safe(line) for line in lines], limit, more_footer, last_footer))


def paginate(lines: list[str], limit: int, more_footer: str, last_footer: str) -> list[str]:
    """Split `lines` into screens of at most `limit` septets.

    Every page but the last ends with `more_footer` (the `98 More` line and the navigation line); the last ends with
    `last_footer` (only navigation, or nothing on a root screen). Short lines move whole to the next page; long
    ones (a paragraph of COVID-19 advice) are split between words, or anywhere if a single word is too long.
    """
    queue = [part for line in lines for part in line.split("\n") if part.strip()]
    pages: list[str] = []
    while True:
        if _fits(queue, last_footer, limit):
            pages.append(_join(queue, last_footer))
            return pages
        budget = limit - gsm7_length(more_footer) - 1  # the newline before the footer
        page: list[str] = []
        used = 0
        while queue:
            line = queue[0]
            room = budget - used - (1 if page else 0)
            if gsm7_length(line) <= room:
                page.append(line)
                used += gsm7_length(line) + (1 if len(page) > 1 else 0)
                queue.pop(0)
                continue
            if page and gsm7_length(line) <= min(KEEP_WHOLE_MAX_CHARS, budget):
                break
            head, tail = _split_line(line, room)
            if not head and not page:
                head, tail = _split_anywhere(line, room)
            if head:
                page.append(head)
                if tail:
                    queue[0] = tail
                else:
                    queue.pop(0)
            break
        pages.append(_join(page, more_footer))


def _fits(lines: list[str], footer: str, limit: int) -> bool:
    return gsm7_length(_join(lines, footer)) <= limit


def _join(lines: list[str], footer: str) -> str:
    return "\n".join([*lines, footer] if footer else lines)


def _split_line(line: str, room: int) -> tuple[str, str]:
    """The most whole words of `line` that fit in `room` septets (never all of them), and the rest.

    A head of more words is never shorter, so the longest one that fits is found by bisection: a long paragraph
    costs a few measurements instead of one per word.
    """
    words = line.split(" ")

    def head(count: int) -> str:
        return " ".join(words[:count]).rstrip()

    fitting, too_long = 0, len(words)  # head(fitting) fits (0 words trivially); head(too_long) is never taken
    while too_long - fitting > 1:
        middle = (fitting + too_long) // 2
        if gsm7_length(head(middle)) <= room:
            fitting = middle
        else:
            too_long = middle
    if fitting and head(fitting):
        return head(fitting), " ".join(words[fitting:]).lstrip()
    return "", line


def _split_anywhere(line: str, room: int) -> tuple[str, str]:
    """For a single word longer than a page: cut it at the last character that fits."""
    used = 0
    for index, char in enumerate(line):
        used += gsm7_length(char)
        if used > room:
            return line[:index], line[index:]
    return line, ""
