"""SendGrid's signed event webhook: each POST carries ``X-Twilio-Email-Event-Webhook-Signature``
(an ECDSA P-256 signature over SHA-256, DER, base64) of the ``X-Twilio-Email-Event-Webhook-Timestamp``
header's value followed by the raw body, made with the key whose public half SendGrid shows when
the signed webhook is enabled (base64 DER, ``NUDGELAB_SENDGRID_PUBLIC_KEY``)."""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

SIGNATURE_HEADER = "x-twilio-email-event-webhook-signature"
TIMESTAMP_HEADER = "x-twilio-email-event-webhook-timestamp"


class BadKey(ValueError):
    pass


def load_key(text: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 DER), or a PEM block; a clear error otherwise."""
    text = text.strip()
    try:
        key = load_pem_public_key(text.encode()) if text.startswith("-----") else \
            load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise BadKey(f"NUDGELAB_SENDGRID_PUBLIC_KEY is not a public key (base64 DER or PEM): {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise BadKey("NUDGELAB_SENDGRID_PUBLIC_KEY is not an elliptic-curve key (SendGrid signs with ECDSA)")
    return key


def valid(key: ec.EllipticCurvePublicKey, body: bytes, signature: str | None, timestamp: str | None) -> bool:
    if not signature or not timestamp:
        return False
    try:
        key.verify(base64.b64decode(signature.strip(), validate=True), timestamp.strip().encode() + body,
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True
