"""Peer identities as the services hold them, checked without dependencies beyond the standard library.

A peer id is an Ed25519 public key (64 hex digits). A service that serves an operator's certificate
(``--tls-cert``) presents another key, and vouches for it on its identity card (``GET /v1/identity``): the
card's ``tls.key_pin`` is ``sha256//`` and the base64 SHA-256 of that key (its DER SubjectPublicKeyInfo, as
curl pins keys), and ``tls.signature`` is the identity's Ed25519 signature over ``hivemind tls key <pin>``.
Verification follows RFC 8032 (section 5.1.7) in plain integers: a few milliseconds, paid once per peer.
"""
from __future__ import annotations

import base64
import hashlib
from typing import Any, Optional, Tuple

_P = 2**255 - 19
_Q = 2**252 + 27742317777372353535851937790883648493
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)

Point = Tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, xy = T/Z


def _add(a: Point, b: Point) -> Point:
    e = (a[1] - a[0]) * (b[1] - b[0]) % _P
    f = (a[1] + a[0]) * (b[1] + b[0]) % _P
    c = 2 * a[3] * b[3] * _D % _P
    g = 2 * a[2] * b[2] % _P
    e, f, g, h = f - e, g - c, g + c, f + e
    return e * f % _P, g * h % _P, f * g % _P, e * h % _P


def _multiply(scalar: int, point: Point) -> Point:
    result: Point = (0, 1, 1, 0)
    while scalar:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _same(a: Point, b: Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % _P == 0 and (a[1] * b[2] - b[1] * a[2]) % _P == 0


def _point(encoded: bytes) -> Optional[Point]:
    """The curve point a 32-byte encoding names, or None if it names none."""
    if len(encoded) != 32:
        return None
    y = int.from_bytes(encoded, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= _P:
        return None
    x2 = (y * y - 1) * pow(_D * y * y + 1, _P - 2, _P) % _P
    if x2 == 0:
        return None if sign else (0, y, 1, 0)
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    if x & 1 != sign:
        x = _P - x
    return x, y, 1, x * y % _P


_BASE = _point((4 * pow(5, _P - 2, _P) % _P).to_bytes(32, "little"))


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the Ed25519 signature of ``message`` by ``public_key`` (RFC 8032)."""
    if len(signature) != 64:
        return False
    a, r = _point(public_key), _point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _Q or _BASE is None:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % _Q
    return _same(_multiply(s, _BASE), _add(r, _multiply(h, a)))


def _element(der: bytes, at: int) -> Tuple[int, int, int]:
    """A DER element at ``at``: its tag, where its contents begin and where it ends."""
    if at + 2 > len(der):
        raise ValueError("truncated DER")
    tag, length, at = der[at], der[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or at + count > len(der):
            raise ValueError("bad DER length")
        length, at = int.from_bytes(der[at:at + count], "big"), at + count
    if at + length > len(der):
        raise ValueError("truncated DER")
    return tag, at, at + length


#: An Ed25519 key's SubjectPublicKeyInfo up to the key's 32 bytes (RFC 8410).
_ED25519_KEY_INFO = bytes.fromhex("302a300506032b6570032100")


def certificate_key(certificate: bytes) -> Optional[str]:
    """The Ed25519 public key (hex) a DER certificate holds as its subject key, or None (another kind of key,
    or no certificate)."""
    try:
        info = subject_key_info(certificate)
    except ValueError:
        return None
    return info[len(_ED25519_KEY_INFO):].hex() if len(info) == 44 and info.startswith(_ED25519_KEY_INFO) else None


def key_pin(certificate: bytes) -> str:
    """``sha256//`` and the base64 SHA-256 of a DER certificate's SubjectPublicKeyInfo (curl's pin of its key).

    Raises ValueError for what is not an X.509 certificate."""
    return "sha256//" + base64.b64encode(hashlib.sha256(subject_key_info(certificate)).digest()).decode()


def subject_key_info(certificate: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of a DER certificate; ValueError for what is not an X.509 certificate."""
    _, body, _ = _element(certificate, 0)
    _, at, end = _element(certificate, body)  # tbsCertificate
    fields = []
    while at < end:
        tag, _, stop = _element(certificate, at)
        fields.append((tag, at, stop))
        at = stop
    if fields and fields[0][0] == 0xA0:  # [0] version
        fields = fields[1:]
    if len(fields) < 6:
        raise ValueError("a certificate without a subject public key")
    _, start, stop = fields[5]  # serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    return certificate[start:stop]


def vouched_pin(card: Any, peer: str) -> Optional[str]:
    """The TLS key pin that an identity card (``GET /v1/identity`` as JSON) says ``peer`` vouches for, if the
    card is ``peer``'s and its signature verifies; else None."""
    try:
        tls = card["tls"]
        pin, signature = str(tls["key_pin"]), bytes.fromhex(str(tls["signature"]))
        if str(card["peer_id"]).lower() != peer.lower() or not pin.startswith("sha256//") or len(pin.encode()) >= 100:
            return None
        return pin if verify(bytes.fromhex(peer), f"hivemind tls key {pin}".encode(), signature) else None
    except (KeyError, TypeError, ValueError):
        return None
