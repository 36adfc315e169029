"""Signed, expiring links to an invoice's PDF: `/invoices/<id>.pdf?expires=<unix>&signature=<hex>`.

A link is what a finance mailbox or a browser can open without an API key: whoever holds it may
download that one invoice until it expires, and nothing else. The signature is an HMAC-SHA256, under
the service's token secret, of the invoice id and the expiry together, so neither can be changed
(another invoice, a later expiry) without the secret; it is compared in constant time. The expiry
is rounded up to a whole minute so that the links of one answer agree.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from urllib.parse import urlencode
from uuid import UUID

from ledger import constants

PDF_ROUTE_PREFIX = "/invoices/"
_PURPOSE = b"credit-ledger invoice pdf v1"
_EXPIRY_STEP_S = 60
# No link lives longer than this, whatever a caller passes (a signature outliving its secret's use).
_TTL_MAX = timedelta(days=31)
_SIGNATURE_HEX_LENGTH = 64


def signature(invoice_id: UUID, expires: int, secret: bytes) -> str:
    message = b"\n".join((_PURPOSE, str(invoice_id).encode(), str(expires).encode()))
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def expiry(now: datetime, ttl: timedelta) -> int:
    """The link's expiry in Unix seconds: now + ttl, rounded up to the minute."""
    if ttl <= timedelta(0) or ttl > _TTL_MAX:
        raise ValueError(f"a PDF link lives between a second and {_TTL_MAX}")
    at = int((now + ttl).timestamp())
    return -(-at // _EXPIRY_STEP_S) * _EXPIRY_STEP_S


def pdf_path(
    invoice_id: UUID,
    secret: bytes,
    now: datetime,
    ttl: timedelta = timedelta(seconds=constants.invoice_pdf_link_ttl_s),
) -> str:
    """The invoice's PDF link (a path: the API's own origin serves it)."""
    expires = expiry(now, ttl)
    query = urlencode({"expires": expires, "signature": signature(invoice_id, expires, secret)})
    return f"{PDF_ROUTE_PREFIX}{invoice_id}.pdf?{query}"


def verify(invoice_id: UUID, expires: str | int, signature_hex: str, secret: bytes, now: datetime) -> bool:
    """Whether the link was signed by us for this invoice and has not expired. Text straight from
    a query string is fine: anything that is not a whole number or a 64-digit hex is refused."""
    try:
        expires_at = int(expires)
    except (TypeError, ValueError):
        return False
    if expires_at <= now.timestamp() or expires_at > (now + _TTL_MAX).timestamp() + _EXPIRY_STEP_S:
        return False
    if len(signature_hex) != _SIGNATURE_HEX_LENGTH:
        return False
    expected = signature(invoice_id, expires_at, secret)
    return hmac.compare_digest(expected.encode(), signature_hex.lower().encode("ascii", errors="replace"))
