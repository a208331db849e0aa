"""GET /metrics (METRICS=true): the process's internal-retry count, for bench/."""

from __future__ import annotations

import pytest

from services import retry
from tests.conftest import AppClient


async def test_metrics_are_off_by_default(app_client: AppClient) -> None:
    async with app_client() as http:
        response = await http.get("/metrics")
    assert response.status_code == 404


async def test_metrics_report_the_internal_retries_of_this_process(
    app_client: AppClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retry, "retry_count", 41)
    async with app_client(metrics=True) as http:
        before = await http.get("/metrics")
        monkeypatch.setattr(retry, "retry_count", 42)
        after = await http.get("/metrics")
    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain")
    assert "allocation_internal_retries_total 41\n" in before.text
    assert "# TYPE allocation_internal_retries_total counter" in before.text
    assert "allocation_internal_retries_total 42\n" in after.text
