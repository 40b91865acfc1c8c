"""The keypad codes on every screen: 0 back, 00 main menu, 98 more, 99 skip (only where a question is optional)."""

from __future__ import annotations

import pytest

from menus import keypad
from tests.menus.conftest import GOOD_ANSWERS

pytestmark = pytest.mark.usefixtures("english")

MAIN = "CON Returnee support\n1 Register"


def test_keypad_codes_are_the_ones_on_the_posters():
    assert (keypad.BACK, keypad.MAIN_MENU, keypad.MORE, keypad.SKIP) == ("0", "00", "98", "99")


def test_zero_goes_back_one_screen_at_a_time(phone):
    phone.dial()
    covid = phone.send("3")
    phone.send("2")
    assert phone.send("0") == covid
    assert phone.send("0").startswith(MAIN)


def test_zero_in_registration_goes_to_the_previous_question_and_keeps_the_answers(phone):
    phone.dial()
    phone.send("1")
    phone.walk("Thabo Mokoena", "2")
    assert phone.send("0").startswith("CON Sex:")
    assert phone.send("0").startswith("CON Registration. Enter your full name:")
    assert phone.send("0").startswith(MAIN)
    assert phone.send("1").startswith("CON You have an unfinished registration.")
    assert phone.send("1").startswith("CON Year of birth")


def test_zero_on_the_main_menu_shows_it_again(phone):
    main = phone.dial()
    assert phone.send("0") == main


@pytest.mark.parametrize("path", [("3", "1"), ("6", "1"), ("1", "Thabo Mokoena", "2", "1985"), ("5",), ("4",)])
def test_double_zero_goes_to_the_main_menu_from_anywhere(phone, path):
    main = phone.dial()
    phone.walk(*path)
    assert phone.send("00") == main


def test_ninety_eight_shows_the_next_page_and_re_asks_after_the_last(phone):
    phone.dial()
    phone.send("3")
    first = phone.send("1")
    assert "98 More" in first
    second = phone.send("98")
    assert second != first and second.startswith("CON ")
    while "98 More" in phone.response.body:
        phone.send("98")
    body = phone.send("98")
    assert body.startswith("CON No more pages.\nPrevention")
    assert phone.response.end is False


def test_ninety_eight_on_a_short_screen_re_asks_it(phone):
    phone.dial()
    body = phone.send("98")
    assert body.startswith("CON No more pages.\nReturnee support\n1 Register")


def test_ninety_nine_skips_the_national_id_question_only(phone):
    phone.dial()
    phone.send("1")
    assert phone.send("99").startswith("CON Invalid choice.\nRegistration. Enter your full name:")
    phone.walk(*GOOD_ANSWERS[:7])
    assert phone.send("99").startswith("CON How many people live in your household?")
    assert phone.send("99").startswith("CON Invalid choice.\nHow many people")


def test_ninety_nine_on_a_menu_is_an_invalid_choice(phone):
    phone.dial()
    assert phone.send("99").startswith("CON Invalid choice.\nReturnee support")


@pytest.mark.parametrize("answer", ["7", "abc", "1*2", "*", "01", "٣", "1 ", "-1", "999999999999"])
def test_invalid_choice_on_the_main_menu_re_asks_it(phone, answer):
    phone.dial()
    body = phone.send(answer)
    if answer.strip() == "1":
        assert body.startswith("CON Registration.")
    else:
        assert body.startswith("CON Invalid choice.\nReturnee support\n1 Register")


@pytest.mark.parametrize(
    "path",
    [
        ("1",),
        ("2",),
        ("3",),
        ("3", "1"),
        ("3", "6"),
        ("4",),
        ("5",),
        ("6",),
        ("6", "1"),
        ("6", "2"),
        ("1", *GOOD_ANSWERS),
    ],
)
def test_every_screen_below_the_main_menu_shows_the_way_back(phone, path):
    phone.dial()
    body = phone.walk(*path)
    pages = [body]
    while "98 More" in pages[-1]:
        pages.append(phone.send("98"))
    assert all(page.endswith("0 Back 00 Main menu") for page in pages), pages


def test_an_empty_answer_re_asks_the_question(phone):
    phone.dial()
    covid = phone.send("3")
    assert phone.send("") == "CON Invalid choice.\n" + covid.removeprefix("CON ")
