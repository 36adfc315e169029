"""localstripe, with what Stripe's API does and localstripe 1.15 does not, that the product relies on:
PaymentIntents listed by `customer` and `created` (`GET /v1/payment_intents?customer=…&created[gte]=…`)
and events listed newest first (localstripe lists them oldest first), as Stripe lists both. Run as
a script (tests.stripe_fake starts it), with localstripe's own server's arguments."""

from __future__ import annotations

from typing import Any

from localstripe import resources
from localstripe.errors import UserError
from localstripe.server import start

_CREATED = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}


def _list_intents(cls: Any, url: str, customer: Any = None, created: Any = None, **kwargs: Any) -> Any:
    if created is not None and (not isinstance(created, dict) or not set(created) <= set(_CREATED)):
        raise UserError(400, "Bad request")
    listed = resources.StripeObject._api_list_all.__func__(cls, url, **kwargs)
    bounds = {op: int(value) for op, value in (created or {}).items()}
    listed._list = sorted(
        (
            intent
            for intent in listed._list
            if (customer is None or intent.customer == customer)
            and all(_CREATED[op](int(intent.created), value) for op, value in bounds.items())
        ),
        key=lambda intent: -int(intent.created),
    )
    return listed


_list_events = resources.Event._api_list_all.__func__


def _events_newest_first(cls: Any, url: str, **kwargs: Any) -> Any:
    listed = _list_events(cls, url, **kwargs)
    listed._list = sorted(reversed(listed._list), key=lambda event: -int(event.created))
    return listed


resources.PaymentIntent._api_list_all = classmethod(_list_intents)
resources.Event._api_list_all = classmethod(_events_newest_first)

if __name__ == "__main__":
    start()
