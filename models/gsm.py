"""The GSM 03.38 alphabet: what a feature phone shows on a USSD screen and an SMS carries in 7 bits.

It lives here, below `notifications`, because the registration rules (`models.answers`) refuse names and villages
that would not survive an SMS; `notifications.sms.encoding` counts SMS parts with it.
"""

from __future__ import annotations

# The GSM 03.38 basic character set (one septet each).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
) - {"\x1b"}
# The extension table: each costs an escape septet plus itself, so it counts twice.
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")
