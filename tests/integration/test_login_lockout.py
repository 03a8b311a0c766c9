"""Sign-in lockout (django-axes) on the site's and the admin's login pages, against MariaDB: wrong passwords for one
username from one address lock that pair out with a page saying when to try again; the right password is refused
too until the cool-off ends or staff unlock it (the admin's access attempts, or ``manage.py axes_reset_username``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

pytestmark = pytest.mark.django_db

PASSWORD = "the right password 42"


def account(name: str, staff: bool = False) -> Any:
    return get_user_model().objects.create_user(name, password=PASSWORD, is_staff=staff, is_superuser=staff)


def sign_in(client: Client, path: str, username: str, password: str) -> Any:
    return client.post(path, {"username": username, "password": password, "next": "/"})


def wrong_passwords(client: Client, path: str, username: str, n: int) -> list[int]:
    return [sign_in(client, path, username, f"guess {i}").status_code for i in range(n)]


def locked_out(username: str) -> Client:
    """A new account ``username`` locked out of the site's login page from a fresh client's address."""
    account(username)
    client = Client()
    wrong_passwords(client, "/accounts/login/", username, settings.AXES_FAILURE_LIMIT)
    assert sign_in(client, "/accounts/login/", username, PASSWORD).status_code == 429
    return client


def test_sixty_wrong_passwords_lock_the_pair_out_and_the_page_says_until_when() -> None:
    account("ann")
    client = Client()
    codes = wrong_passwords(client, "/accounts/login/", "ann", 60)
    limit = settings.AXES_FAILURE_LIMIT
    assert codes[: limit - 1] == [200] * (limit - 1)  # the form again, "enter a correct username and password"
    assert set(codes[limit - 1 :]) == {429}
    locked = sign_in(client, "/accounts/login/", "ann", PASSWORD)  # the right password: refused as well
    assert locked.status_code == 429 and "_auth_user_id" not in client.session
    page = locked.content.decode()
    assert "Too many failed sign-ins for this username from your address" in page
    until = timezone.now() + settings.AXES_COOLOFF_TIME
    assert f"Try again after {until:%H:}" in page and "ask a staff member to unlock" in page
    assert 'name="username"' in page  # the login form, so the user can try again later from it
    assert int(locked["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
    # Another address, or another username from this one, is not locked.
    assert sign_in(Client(REMOTE_ADDR="10.0.0.7"), "/accounts/login/", "ann", PASSWORD).status_code == 302
    account("bob")
    assert sign_in(client, "/accounts/login/", "bob", PASSWORD).status_code == 302


def test_the_lockout_ends_after_the_cool_off() -> None:
    client = locked_out("ann")
    # The cool-off counts from the last failure: move it back past the cool-off, as time would.
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert sign_in(client, "/accounts/login/", "ann", PASSWORD).status_code == 302


def test_admin_login_locks_out_the_same_way_and_staff_unlock_it_in_the_admin() -> None:
    account("root", staff=True)
    client = Client()
    codes = wrong_passwords(client, "/admin/login/", "root", 30)
    assert set(codes[settings.AXES_FAILURE_LIMIT - 1 :]) == {429}
    locked = sign_in(client, "/admin/login/?next=/admin/", "root", PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode() and "fsml administration" in locked.content.decode()
    # Another staff member unlocks it: the admin lists the attempt and deletes it.
    account("carol", staff=True)
    staff = Client(REMOTE_ADDR="10.0.0.9")
    assert sign_in(staff, "/admin/login/?next=/admin/", "carol", PASSWORD).status_code == 302
    listing = staff.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200 and "root" in listing.content.decode()
    attempt = AccessAttempt.objects.get(username="root")
    confirm = {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"}
    assert staff.post("/admin/axes/accessattempt/", confirm).status_code == 302
    assert not AccessAttempt.objects.filter(username="root").exists()
    assert sign_in(client, "/admin/login/?next=/admin/", "root", PASSWORD).status_code == 302


def test_axes_reset_username_unlocks_from_the_command_line() -> None:
    client = locked_out("ann")
    call_command("axes_reset_username", "ann")
    assert sign_in(client, "/accounts/login/", "ann", PASSWORD).status_code == 302


def test_a_success_before_the_limit_clears_the_failures() -> None:
    account("ann")
    client = Client()
    wrong_passwords(client, "/accounts/login/", "ann", settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, "/accounts/login/", "ann", PASSWORD).status_code == 302
    client.logout()
    wrong_passwords(client, "/accounts/login/", "ann", settings.AXES_FAILURE_LIMIT - 1)
    assert sign_in(client, "/accounts/login/", "ann", PASSWORD).status_code == 302
