"""Who sees what through the API: a calling service reads, lists and re-submits (Idempotency-Key) only its own
jobs; the crawl API is for staff. Real MariaDB and Redis; no worker runs, so the jobs stay queued."""

from __future__ import annotations

from typing import Any

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from datastore.models import InferenceJob
from serving.web.accounts import service_token

MODEL = "sentiment-test"


def client_of(token: Token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def service_client_of(name: str) -> tuple[APIClient, Any]:
    """An API client with the token of calling service ``name`` (made as ``manage.py service_token`` makes it),
    and its user."""
    token, created = service_token(name)
    assert created, f"{name} is a new service"
    return client_of(token), token.user


def submitted(client: APIClient, text: str, key: str | None = None, status: int = 202) -> str:
    headers: dict[str, Any] = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    res = client.post("/api/jobs/", {"model": MODEL, "inputs": {"text": text}}, format="json", **headers)
    assert res.status_code == status, res.content
    return str(res.json()["id"])


def test_a_service_reads_and_lists_only_its_own_jobs(live_env, clean_broker, registered_model) -> None:
    billing, _ = service_client_of("billing")
    shipping, _ = service_client_of("shipping")
    theirs = submitted(billing, "billing's text")
    assert billing.get(f"/api/jobs/{theirs}/").status_code == 200, "its owner reads it"

    res = shipping.get(f"/api/jobs/{theirs}/")
    assert res.status_code == 404 and res.json() == {"detail": "no such job"}, res.content
    assert shipping.get("/api/jobs/").json() == [], "another service's job is not listed"

    own = submitted(shipping, "shipping's text")
    assert [j["id"] for j in shipping.get("/api/jobs/").json()] == [own]
    assert [j["id"] for j in billing.get("/api/jobs/").json()] == [theirs]
    assert billing.get(f"/api/jobs/{own}/").status_code == 404
    assert shipping.get(f"/api/jobs/{own}/").json()["inputs"] == {"text": "shipping's text"}


def test_an_idempotency_key_is_each_services_own(live_env, clean_broker, registered_model) -> None:
    """A second service retrying with a key another service used gets a job of its own, never the other's."""
    billing, billing_user = service_client_of("billing")
    shipping, shipping_user = service_client_of("shipping")
    first = submitted(billing, "same text", key="order-7")
    theirs = submitted(shipping, "same text", key="order-7")  # 202: created, not billing's job found again
    assert theirs != first
    assert submitted(shipping, "same text", key="order-7", status=200) == theirs, "its own retry finds its own job"
    assert submitted(billing, "same text", key="order-7", status=200) == first
    # Different inputs under a key only the other service used: no conflict (422) with the other's request.
    other = submitted(shipping, "other text", key="order-8")
    assert submitted(billing, "something else", key="order-8") != other
    owners = dict(InferenceJob.objects.filter(idempotency_key="order-7").values_list("pk", "submitted_by_id"))
    assert {str(pk): user for pk, user in owners.items()} == {first: billing_user.pk, theirs: shipping_user.pk}
    assert InferenceJob.objects.count() == 4


def test_the_crawl_api_is_for_staff_only(live_env) -> None:
    from django.contrib.auth import get_user_model

    service, _ = service_client_of("billing")
    res = service.get("/api/crawls/")
    assert res.status_code == 403, res.content
    assert "permission" in res.json()["detail"]
    assert APIClient().get("/api/crawls/").status_code == 401, "no token at all"
    staff = get_user_model().objects.create(username="ops", is_staff=True)
    assert client_of(Token.objects.create(user=staff)).get("/api/crawls/").status_code == 200, "staff read it"
