"""Calling services' accounts: a user without a password and its API token."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from rest_framework.authtoken.models import Token


class AccountError(Exception):
    pass


def service_token(name: str, rotate: bool = False) -> tuple[Token, bool]:
    """The API token of the calling service ``name``: its user (no password, not staff) and token are made on
    first use. ``rotate`` replaces the token (the old one is refused at once here, and in other web processes
    once their token cache lapses: ``FSML_TOKEN_CACHE_SECONDS``) and so the service's callback key; an expired
    token is replaced this way. Staff users are refused: their tokens are people's.

    Returns:
        (its token, whether its user was created now).
    """
    users = get_user_model()
    try:
        users.username_validator(name)
    except ValidationError as exc:
        raise AccountError(f"bad service name {name!r}: {' '.join(exc.messages)}") from None
    with transaction.atomic():
        user, created = users.objects.get_or_create(username=name)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        elif not user.is_active:
            raise AccountError(f"user {name!r} is deactivated; activate it in the admin first")
        elif user.is_staff or user.is_superuser:
            raise AccountError(f"user {name!r} is staff: service accounts are for calling services, not people")
        if rotate:
            Token.objects.filter(user=user).delete()
        token, _ = Token.objects.get_or_create(user=user)
    return token, created
