"""The web app on a fresh store with the demo's agencies, people and accounts."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyotp
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sharewise.api.app import create_app
from sharewise.cli.serve import DEMO_PASSWORD, DemoAccount, load_demo
from sharewise.policy.model import LawPack
from sharewise.services import accounts
from sharewise.wiring import Control, Settings, UtcClock, control_for
from tests.conftest import TODAY


class MovableClock(UtcClock):
    """The real time plus an offset tests can move forward."""

    def __init__(self) -> None:
        self.offset = dt.timedelta()

    def now(self) -> dt.datetime:
        return super().now() + self.offset


@dataclass
class Site:
    app: FastAPI
    control: Control
    clock: MovableClock
    accounts: dict[str, DemoAccount]

    last_steps: dict[str, int] = field(default_factory=dict)

    def code(self, user: str) -> str:
        """A one-time code of the user's authenticator that the server accepts now ("" without one)."""
        secret = self.accounts[user].totp_secret
        return self.next_code(secret) if secret else ""

    def next_code(self, secret: str) -> str:
        """A code of this secret the server accepts now: each code is accepted once, so each call gives a later one.

        The code is for the step after the secret's last one; when that is beyond the server's drift
        window, the site's clock moves on (by 30 seconds at a time).
        """
        current = int(self.clock.now().timestamp()) // accounts.TOTP_PERIOD
        step = max(current, self.last_steps.get(secret, current - 1) + 1)
        if step > current + accounts.TOTP_DRIFT:
            self.clock.offset += dt.timedelta(seconds=accounts.TOTP_PERIOD * (step - current - accounts.TOTP_DRIFT))
        self.last_steps[secret] = step
        return pyotp.TOTP(secret).at(step * accounts.TOTP_PERIOD)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, law: LawPack) -> Iterator[Site]:
    accounts.use_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    tmp: Path = tmp_path_factory.mktemp("web")
    settings = Settings(data_dir=tmp / "data", key_dir=tmp / "keys", cache_dir=None)
    clock = MovableClock()
    control = control_for(settings, clock)
    demo = {a.user_id: a for a in load_demo(control, law)}
    app = create_app(settings, control, law, today=lambda: TODAY, session_secret="web-tests")
    yield Site(app, control, clock, demo)
    control.store.dispose()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def signed_in(site: Site, user: str) -> TestClient:
    client = TestClient(site.app, base_url="https://testserver")
    token = csrf_of(client.get("/sign-in").text)
    r = client.post(
        "/sign-in",
        data={"csrf_token": token, "username": user, "password": DEMO_PASSWORD, "code": site.code(user)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client
