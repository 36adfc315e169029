"""Stripe, behind one async gateway: the only module that imports `stripe`.

Stripe's objects become frozen views here, in one place, so nothing else knows Stripe's shapes.
What Stripe answers is normalized the way the rest of the code needs it:

- a declined charge is a *result*, not an error: real Stripe raises a 402 `CardError`, other
  servers answer 200 with status `requires_payment_method` and a `last_payment_error`; both become
  an `IntentView` with status FAILED and the decline code;
- Stripe unreachable, timing out, rate limiting or failing (5xx) raises `Unavailable` (retry
  with the same idempotency key);
- a card refused when attached raises `PaymentDeclined`; an id Stripe does not know, `NotFound`.
The API base is Stripe's own unless `CREDIT_LEDGER_STRIPE_API_BASE` is set.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NoReturn

import stripe

from ledger import constants
from ledger.core.errors import InvalidCommand, NotFound, PaymentDeclined, PaymentsNotConfigured, Unavailable
from ledger.payments.events import EventMalformed, EventView, event_view
from ledger.runtime.settings import Settings

log = logging.getLogger(__name__)


class IntentStatus(StrEnum):
    SUCCEEDED = "succeeded"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    FAILED = "failed"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True)
class IntentView:
    id: str  # "" when a declined create did not say which intent it made
    status: IntentStatus
    amount: int
    currency: str  # ISO 4217, upper case
    decline_code: str | None = None
    failure_message: str | None = None
    client_secret: str | None = None
    next_action_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    customer: str | None = None


@dataclass(frozen=True, slots=True)
class PaymentMethodView:
    id: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    customer: str | None = None  # the customer it is attached to, if any


@dataclass(frozen=True, slots=True)
class RefundView:
    id: str
    status: str  # pending, succeeded, failed, canceled
    amount: int
    currency: str  # upper case
    payment_intent: str | None
    metadata: Mapping[str, str] = field(default_factory=dict)


class SignatureInvalid(Exception):
    """A webhook's signature, timestamp or body does not verify: the event is refused."""


def _fail(error: stripe.StripeError) -> NoReturn:
    """Raise the domain error a Stripe error stands for."""
    status = error.http_status or 0
    if isinstance(error, stripe.CardError):
        raise PaymentDeclined(error.user_message or "The card was declined.", _decline_code(error)) from None
    if isinstance(error, stripe.APIConnectionError | stripe.RateLimitError) or status >= 500 or status == 409:
        raise Unavailable(f"Stripe could not be reached: {error.user_message or type(error).__name__}") from None
    if isinstance(error, stripe.AuthenticationError | stripe.PermissionError):
        log.error("Stripe refused our key: %s", error.user_message)
        raise Unavailable("payments are misconfigured: Stripe refused the key") from None
    if status == 404:
        raise NotFound(error.user_message or "Stripe does not know this object") from None
    raise InvalidCommand(f"Stripe refused the request: {error.user_message or error.code}") from None


def _decline_code(error: stripe.StripeError) -> str:
    body = error.json_body or {}
    details = body.get("error", {}) if isinstance(body, Mapping) else {}
    return str(details.get("decline_code") or details.get("code") or error.code or "card_declined")


def intent_view(data: Mapping[str, Any]) -> IntentView:
    """A PaymentIntent (as a dict) in our terms."""
    raw = str(data.get("status") or "")
    error = data.get("last_payment_error") or {}
    status = _STATUSES.get(raw, IntentStatus.PROCESSING)
    if raw == "requires_payment_method" and not error:
        status = IntentStatus.PROCESSING  # not confirmed yet: nothing failed
    next_action = data.get("next_action") or {}
    return IntentView(
        id=str(data["id"]),
        status=status,
        amount=int(data.get("amount") or 0),
        currency=str(data.get("currency") or "").upper(),
        decline_code=(str(error.get("decline_code") or error.get("code") or "card_declined") if error else None),
        failure_message=str(error["message"]) if error.get("message") else None,
        client_secret=data.get("client_secret") if status is IntentStatus.REQUIRES_ACTION else None,
        next_action_type=str(next_action["type"]) if next_action.get("type") else None,
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
        customer=_id_of(data.get("customer")),
    )


_STATUSES = {
    "succeeded": IntentStatus.SUCCEEDED,
    "requires_action": IntentStatus.REQUIRES_ACTION,
    "requires_confirmation": IntentStatus.REQUIRES_ACTION,
    "processing": IntentStatus.PROCESSING,
    "requires_capture": IntentStatus.PROCESSING,
    "requires_payment_method": IntentStatus.FAILED,
    "canceled": IntentStatus.CANCELED,
}


def _id_of(value: Any) -> str | None:
    """An expandable field: an id, or the object that has it."""
    if isinstance(value, Mapping):
        return str(value["id"])
    return str(value) if value else None


def _declined_intent(error: stripe.CardError, amount: int, currency: str, metadata: Mapping[str, str]) -> IntentView:
    """A 402 on create-and-confirm: the intent it names (if it does) failed with the decline code."""
    body = error.json_body or {}
    details = body.get("error", {}) if isinstance(body, Mapping) else {}
    intent = details.get("payment_intent") or {}
    return IntentView(
        id=str(intent.get("id") or "") if isinstance(intent, Mapping) else str(intent),
        status=IntentStatus.FAILED,
        amount=amount,
        currency=currency.upper(),
        decline_code=_decline_code(error),
        failure_message=error.user_message or str(details.get("message") or "The card was declined."),
        metadata=dict(metadata),
    )


def _method_view(data: Mapping[str, Any]) -> PaymentMethodView:
    card = data.get("card") or {}
    return PaymentMethodView(
        id=str(data["id"]),
        brand=str(card.get("brand") or ""),
        last4=str(card.get("last4") or ""),
        exp_month=int(card.get("exp_month") or 0),
        exp_year=int(card.get("exp_year") or 0),
        customer=_id_of(data.get("customer")),
    )


def _refund_view(data: Mapping[str, Any]) -> RefundView:
    return RefundView(
        id=str(data["id"]),
        status=str(data.get("status") or "pending"),
        amount=int(data.get("amount") or 0),
        currency=str(data.get("currency") or "").upper(),
        payment_intent=_id_of(data.get("payment_intent")),
        metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
    )


def verify_event(payload: bytes, signature_header: str, secret: str) -> EventView:
    """The event a webhook carries, if its signature (HMAC-SHA256 of `t.body` under `secret`)
    verifies, its timestamp is within the tolerance either way (a future one too), and its body is
    an event we can store; SignatureInvalid otherwise."""
    tolerance = constants.stripe_webhook_tolerance_s
    try:
        stripe.WebhookSignature.verify_header(payload, signature_header, secret, tolerance=tolerance)
        data = json.loads(payload)
        if _signed_at(signature_header) > time.time() + tolerance:
            raise SignatureInvalid("the signature's timestamp is in the future")
        return event_view(data)
    except (stripe.SignatureVerificationError, ValueError, RecursionError) as error:  # EventMalformed: ValueError
        raise SignatureInvalid(str(error)) from None


def _signed_at(header: str) -> int:  # verify_header parsed it already: well formed
    return int(next(item.strip()[2:] for item in header.split(",") if item.strip().startswith("t=")))


class _HTTPXClient(stripe.HTTPXClient):
    """stripe 16 hands httpx an encoded form body as `data=`, which httpx deprecates for bytes (and
    warns about on every call); as `content=` it is the very same request."""

    def _get_request_args_kwargs(self, method: str, url: str, headers: Mapping[str, str], post_data: Any) -> Any:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        if isinstance(kwargs.get("data"), bytes | str):
            kwargs["content"] = kwargs.pop("data")
        return [args, kwargs]


class Gateway:
    """Stripe for one process (one HTTP client, async)."""

    def __init__(self, api_key: str, api_base: str = "") -> None:
        self._http = _HTTPXClient(timeout=constants.stripe_request_timeout_s)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else {},
            http_client=self._http,
            max_network_retries=constants.stripe_network_retries_max,
        )

    async def close(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]  # untyped in stripe 16

    async def create_customer(self, organization_id: str, name: str) -> str:
        """A customer for the organization (a retry within Stripe's idempotency window gets the same)."""
        params: Any = {"name": name, "metadata": {"organization_id": organization_id}}
        try:
            customer = await self._client.v1.customers.create_async(
                params=params, options={"idempotency_key": f"customer:{organization_id}"}
            )
        except stripe.StripeError as error:
            _fail(error)
        return str(customer.id)

    async def attach_payment_method(self, customer: str, payment_method: str) -> PaymentMethodView:
        try:
            method = await self._client.v1.payment_methods.attach_async(payment_method, params={"customer": customer})
        except stripe.StripeError as error:
            _fail(error)
        return _method_view(method.to_dict())

    async def list_payment_methods(self, customer: str) -> list[PaymentMethodView]:
        params: Any = {"customer": customer, "type": "card", "limit": constants.payment_methods_listed_max}
        try:
            methods = await self._client.v1.payment_methods.list_async(params=params)
        except stripe.StripeError as error:
            _fail(error)
        return [_method_view(method.to_dict()) for method in methods.data]

    async def set_default_payment_method(self, customer: str, payment_method: str | None) -> None:
        params: Any = {"invoice_settings": {"default_payment_method": payment_method or ""}}
        try:
            await self._client.v1.customers.update_async(customer, params=params)
        except stripe.StripeError as error:
            _fail(error)

    async def default_payment_method(self, customer: str) -> str | None:
        try:
            found = (await self._client.v1.customers.retrieve_async(customer)).to_dict()
        except stripe.StripeError as error:
            _fail(error)
        return _id_of((found.get("invoice_settings") or {}).get("default_payment_method"))

    async def detach_payment_method(self, payment_method: str) -> None:
        try:
            await self._client.v1.payment_methods.detach_async(payment_method)
        except stripe.StripeError as error:
            _fail(error)

    async def create_payment_intent(
        self,
        *,
        customer: str,
        payment_method: str,
        amount: int,
        currency: str,
        off_session: bool,
        idempotency_key: str,
        metadata: Mapping[str, str],
    ) -> IntentView:
        """Create and confirm an intent; a decline is an intent with status FAILED, never an error."""
        params: Any = {
            "customer": customer,
            "payment_method": payment_method,
            "amount": amount,
            "currency": currency.lower(),
            "confirm": True,
            "off_session": off_session,
            "metadata": dict(metadata),
        }
        try:
            intent = await self._client.v1.payment_intents.create_async(
                params=params, options={"idempotency_key": idempotency_key}
            )
        except stripe.CardError as error:
            return _declined_intent(error, amount, currency, metadata)
        except stripe.StripeError as error:
            _fail(error)
        return intent_view(intent.to_dict())

    async def retrieve_payment_intent(self, intent_id: str) -> IntentView:
        try:
            intent = await self._client.v1.payment_intents.retrieve_async(intent_id)
        except stripe.StripeError as error:
            _fail(error)
        return intent_view(intent.to_dict())

    async def create_refund(
        self, *, payment_intent: str, amount: int, idempotency_key: str, metadata: Mapping[str, str]
    ) -> RefundView:
        params: Any = {"payment_intent": payment_intent, "amount": amount, "metadata": dict(metadata)}
        try:
            refund = await self._client.v1.refunds.create_async(
                params=params, options={"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as error:
            _fail(error)
        return _refund_view(refund.to_dict())

    async def list_refunds(self, payment_intent: str) -> list[RefundView]:
        params: Any = {"payment_intent": payment_intent, "limit": constants.stripe_page_size_max}
        try:
            refunds = await self._client.v1.refunds.list_async(params=params)
        except stripe.StripeError as error:
            _fail(error)
        return [_refund_view(refund.to_dict()) for refund in refunds.data]

    async def list_events(
        self,
        created_gte: int,
        limit: int = constants.stripe_page_size_max,
        starting_after: str | None = None,
        created_lte: int | None = None,
    ) -> EventPage:
        """One page of the events created in [`created_gte`, `created_lte`] (Unix seconds), as Stripe
        orders them (newest first); `starting_after` (a page's `last_id`) asks for the next. An event
        we cannot take is left out of `events` (logged) but still counts for the paging."""
        created: dict[str, int] = {"gte": created_gte, **({"lte": created_lte} if created_lte is not None else {})}
        params: Any = {"created": created, "limit": min(limit, constants.stripe_page_size_max)}
        if starting_after:
            params["starting_after"] = starting_after
        try:
            listed = await self._client.v1.events.list_async(params=params)
        except stripe.StripeError as error:
            _fail(error)
        events, raw = [], [event.to_dict() for event in listed.data]
        for data in raw:
            try:
                events.append(event_view(data))
            except EventMalformed as error:
                log.error("stripe event %.80r skipped: %s", data.get("id"), error)
        last = raw[-1].get("id") if raw else None
        return EventPage(events, str(last) if last else None, bool(listed.has_more) and last is not None)

    async def retrieve_payment_method(self, payment_method: str) -> PaymentMethodView:
        try:
            method = await self._client.v1.payment_methods.retrieve_async(payment_method)
        except stripe.StripeError as error:
            _fail(error)
        return _method_view(method.to_dict())

    async def intents_of(self, customer: str, created_gte: int) -> list[IntentView]:
        """The customer's PaymentIntents created since `created_gte` (Unix seconds), newest first (at
        most a few pages: what one payment's crashed creation may have left)."""
        found: list[IntentView] = []
        params: Any = {"customer": customer, "created": {"gte": created_gte}, "limit": constants.stripe_page_size_max}
        for _ in range(constants.stripe_intent_pages_max):
            try:
                listed = await self._client.v1.payment_intents.list_async(params=params)
            except stripe.StripeError as error:
                _fail(error)
            found.extend(intent_view(intent.to_dict()) for intent in listed.data)
            if not listed.has_more or not listed.data:
                break
            params["starting_after"] = listed.data[-1].id
        return found


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[EventView]
    last_id: str | None  # what `starting_after` takes for the next page
    has_more: bool


def gateway_from(settings: Settings) -> Gateway | None:
    """The process's gateway, or None when no Stripe key is configured (payments answer
    PAYMENTS_NOT_CONFIGURED, everything else runs)."""
    if not settings.stripe_api_key:
        return None
    return Gateway(settings.stripe_api_key, settings.stripe_api_base)


def require_gateway(gateway: Gateway | None) -> Gateway:
    if gateway is None:
        raise PaymentsNotConfigured("payments are not configured: set CREDIT_LEDGER_STRIPE_API_KEY")
    return gateway
