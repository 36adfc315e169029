"""localstripe, the stateful fake Stripe server from PyPI, started once per test run on a free port.

The product never knows: tests hand the service the fake's URL as `CREDIT_LEDGER_STRIPE_API_BASE`,
as an operator would hand it Stripe's. localstripe keeps every object in memory (and pickles it on
each write), so each test starts from an empty store; webhooks are registered per test, pointing at
that test's service.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from ledger.runtime.settings import Settings

# Test cards (localstripe knows them as Stripe does).
CARD_OK = "4242424242424242"
CARD_DECLINED_ON_ATTACH = "4000000000000002"
CARD_CHARGES_FAIL = "4000000000000341"  # attaches, then every charge is declined
CARD_3DS = "4000002500003155"  # every charge requires authentication


@dataclass(frozen=True)
class FakeStripe:
    url: str
    log: Path

    def settings(self, settings: Settings, webhook_secret: str = "") -> Settings:
        """`settings` paying through this server: a test key and, if given, a webhook secret."""
        return replace(
            settings,
            stripe_api_key="sk_test_" + secrets.token_hex(12),
            stripe_api_base=self.url,
            stripe_webhook_secret=webhook_secret,
        )

    def flush(self) -> None:
        httpx.delete(f"{self.url}/_config/data", timeout=10).raise_for_status()

    def register_webhook(self, url: str, secret: str, events: list[str] | None = None) -> None:
        """Point localstripe's one webhook at `url`, signed with `secret` (replacing the last)."""
        data: dict[str, object] = {"url": url, "secret": secret}
        if events is not None:
            data["events"] = events
        httpx.post(f"{self.url}/_config/webhooks/tests", json=data, timeout=10).raise_for_status()

    def card(self, number: str) -> str:
        """A payment method for a test card, made as Stripe.js would (the card never reaches us)."""
        response = httpx.post(
            f"{self.url}/v1/payment_methods",
            data={"type": "card", "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2034",
                  "card[cvc]": "123"},
            auth=("sk_test_fixture", ""),
            timeout=10,
        )  # fmt: skip
        response.raise_for_status()
        return str(response.json()["id"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def fake_stripe(directory: Path) -> Iterator[FakeStripe]:
    port = _free_port()
    log = directory / "localstripe.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            # localstripe, plus the intent listing it lacks (tests/localstripe_server.py)
            [sys.executable, str(Path(__file__).with_name("localstripe_server.py")), "--port", str(port),
             "--from-scratch"],
            stdout=out, stderr=subprocess.STDOUT, cwd=directory, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/v1/customers", auth=("sk_test_probe", ""), timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"localstripe did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield FakeStripe(url, log)
    finally:
        process.terminate()
        process.wait(10)
