"""The keypad codes every screen understands. They are printed on posters and read out on the radio: keep them.

One place knows them; screens, the pager and the catalogue texts ("98 More", "0 Back 00 Main menu") follow.
"""

BACK = "0"  # the previous screen
MAIN_MENU = "00"  # the main menu, from anywhere
MORE = "98"  # the next page of a long text
SKIP = "99"  # skip an optional question (only the national ID); elsewhere invalid input

# The codes as catalogue placeholders: texts write "{more} More" or "({skip} to skip)", never the digits themselves.
PLACEHOLDERS = {"back": BACK, "main_menu": MAIN_MENU, "more": MORE, "skip": SKIP}
