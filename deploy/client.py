"""A small client of fsml's REST API, used by ``fsml submit`` and by the demo's scripted annotator."""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests


class ApiError(Exception):
    """The server answered 4xx or 5xx (``status``), or did not answer at all (``status`` 0)."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(f"HTTP {status}: {detail}" if status else str(detail))
        self.status, self.detail = status, detail


class ApiClient:
    """Token-authenticated calls to one fsml server."""

    def __init__(self, base_url: str, token: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        try:
            res = self.session.request(method, f"{self.base_url}{path}", timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:  # refused, unreachable, timed out, a malformed URL
            raise ApiError(0, f"no answer from {self.base_url}: {type(exc).__name__}: {exc}") from None
        if res.status_code >= 400:
            try:
                detail = res.json()
            except ValueError:
                detail = res.text[:200]
            raise ApiError(res.status_code, detail)
        return res

    def next_task(self, project_id: int) -> dict[str, Any] | None:
        res = self._call("POST", f"/api/projects/{project_id}/next/")
        return None if res.status_code == 204 else res.json()

    def annotate(self, task_id: int, value: Any, lead_time: float = 0.0) -> dict[str, Any]:
        return self._call(
            "POST", f"/api/tasks/{task_id}/annotations/", json={"value": value, "lead_time": lead_time}
        ).json()

    def submit_job(self, model: str, inputs: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return self._call("POST", "/api/jobs/", json={"model": model, "inputs": inputs}, headers=headers).json()

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/api/jobs/{job_id}/").json()

    def wait_jobs(self, job_ids: list[str], timeout: float = 120, poll: float = 0.2) -> list[dict[str, Any]]:
        """Poll until every job has succeeded or failed; raises TimeoutError listing the stragglers."""
        done: dict[str, dict[str, Any]] = {}
        deadline = time.monotonic() + timeout
        while len(done) < len(job_ids):
            for job_id in job_ids:
                if job_id not in done:
                    job = self.job(job_id)
                    if job["status"] in ("succeeded", "failed"):
                        done[job_id] = job
            if len(done) < len(job_ids):
                if time.monotonic() > deadline:
                    missing = [j for j in job_ids if j not in done]
                    raise TimeoutError(f"{len(missing)} jobs unfinished after {timeout:.0f}s: {missing[:3]}")
                time.sleep(poll)
        return [done[j] for j in job_ids]
