"""Logging in and out in a real browser."""

from __future__ import annotations


def test_a_staff_member_logs_in_sees_who_they_are_and_logs_out(login):
    page = login("officer")
    assert "officer@example.org" in page.content()
    page.click("text=Log out")
    page.wait_for_url("**/login")
    page.goto("/")
    assert "/login" in page.url  # the start page needs a login again


def test_a_wrong_password_is_refused_with_a_message(page, db):
    from tests.factories import make_staff

    make_staff(db, "viewer@example.org", "viewer")
    page.goto("/login")
    page.fill("input[name=email]", "viewer@example.org")
    page.fill("input[name=password]", "not the password")
    page.click("button[type=submit]")
    assert "Wrong e-mail or password" in page.content()
    assert "/login" in page.url
