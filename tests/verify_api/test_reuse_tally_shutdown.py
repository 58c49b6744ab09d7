"""Counted authentication failures reach the audit log: when their window is due while the app
runs (no further request needed), and whatever is still counted when the app shuts down — on
the public app (holder credentials, presentations) and on the data-reuse app (clients)."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from support.cli import run_cli
from trust.domain import TrustDomain
from verify_api import holder_auth
from verify_api.app import create_app
from verify_api.reuse_app import ReuseSettings, create_reuse_app
from verify_api.settings import VerifySettings

BAD_HOLDER = {"Authorization": "Bearer zyh_" + "0" * 16 + "_" + "1" * 64}
BAD_CLIENT = {"Authorization": "Bearer dept-" + "0" * 16 + "." + "1" * 64}
BAD_PRESENTATION = "A" * 52


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("tally-home")
    code, _, err = run_cli(home, "init")
    assert code == 0, err
    return home


def _failures(home, action: str) -> list[int]:
    td = TrustDomain.open(str(home), actor="test")
    try:
        return [e.details["failures"] for e in td.audit.entries(action=action)]
    finally:
        td.close()


def _settings() -> VerifySettings:
    return VerifySettings(rate_per_minute=100_000, burst=100_000, upload_rate_per_minute=100_000,
                          upload_burst=100_000)


def test_the_public_app_writes_what_is_still_counted_at_shutdown(home):
    before_h = sum(_failures(home, "licence.holder_credential.auth_failed"))
    before_p = sum(_failures(home, "licence.presentation.refused"))
    with TestClient(create_app(home, _settings())) as public:
        for _ in range(5):
            assert public.get("/api/v1/holder/grants", headers=BAD_HOLDER).status_code == 401
            assert public.get(f"/api/v1/presentations/{BAD_PRESENTATION}").status_code == 404
        # the first failure of each was written at once, the other four are only counted
        assert sum(_failures(home, "licence.holder_credential.auth_failed")) == before_h + 1
        assert sum(_failures(home, "licence.presentation.refused")) == before_p + 1
    assert sum(_failures(home, "licence.holder_credential.auth_failed")) == before_h + 5
    assert sum(_failures(home, "licence.presentation.refused")) == before_p + 5


def test_the_reuse_app_writes_what_is_still_counted_at_shutdown(home):
    before = sum(_failures(home, "reuse.client.auth_failed"))
    app = create_reuse_app(home, ReuseSettings(rate_per_minute=100_000, burst=100_000))
    try:
        with TestClient(app) as reuse:
            for _ in range(4):
                assert reuse.get("/api/v1/reuse/grants", headers=BAD_CLIENT).status_code == 401
            assert sum(_failures(home, "reuse.client.auth_failed")) == before + 1
        assert sum(_failures(home, "reuse.client.auth_failed")) == before + 4
    finally:
        app.state.domain.close()


def test_counts_are_written_when_their_window_is_due_without_another_request(home, monkeypatch):
    monkeypatch.setattr(holder_auth, "FLUSH_SECONDS", 0.05)
    before = sum(_failures(home, "licence.holder_credential.auth_failed"))
    with TestClient(create_app(home, _settings())) as public:
        public.get("/api/v1/holder/grants", headers=BAD_HOLDER)
        public.app.state.holder_credentials.failures.window = 0.2
        for _ in range(3):
            public.get("/api/v1/holder/grants", headers=BAD_HOLDER)
        assert sum(_failures(home, "licence.holder_credential.auth_failed")) == before + 1
        deadline = time.monotonic() + 5
        while sum(_failures(home, "licence.holder_credential.auth_failed")) < before + 4:
            assert time.monotonic() < deadline, "the due window was never written"
            time.sleep(0.05)
