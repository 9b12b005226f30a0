"""Ed25519 verification and key pins, checked against RFC 8032's test vectors and against OpenSSL."""
from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from hivemind_mesh.identity import key_pin, verify, vouched_pin

# RFC 8032, section 7.1: TEST 1 (empty message), TEST 2 (one byte) and TEST 3 (two bytes).
VECTORS = [
    ("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]


@pytest.mark.parametrize("public, message, signature", VECTORS)
def test_rfc8032_vectors_verify_and_any_change_fails(public: str, message: str, signature: str) -> None:
    key, text, signed = bytes.fromhex(public), bytes.fromhex(message), bytes.fromhex(signature)
    assert verify(key, text, signed)
    assert not verify(key, text + b"!", signed)
    assert not verify(key, text, signed[:-1] + bytes([signed[-1] ^ 1]))
    assert not verify(bytes(32), text, signed)
    assert not verify(key, text, signed[:63])


def openssl(*arguments: str, data: bytes = b"") -> bytes:
    return subprocess.run(["openssl", *arguments], input=data, check=True, capture_output=True).stdout


def test_signatures_and_pins_agree_with_openssl(tmp_path: Path) -> None:
    key = tmp_path / "id.pem"
    openssl("genpkey", "-algorithm", "ed25519", "-out", str(key))
    public = openssl("pkey", "-in", str(key), "-pubout", "-outform", "DER")[-32:]
    for message in (b"hivemind tls key sha256//abc=", bytes(range(256)) * 3):
        (tmp_path / "message").write_bytes(message)
        signature = openssl("pkeyutl", "-sign", "-inkey", str(key), "-rawin", "-in", str(tmp_path / "message"))
        assert verify(public, message, signature)
        assert not verify(public, message[1:], signature)

    # A P-256 certificate, as an operator's CA would issue: its pin as curl computes it.
    certificate = tmp_path / "op.crt"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(tmp_path / "op.key"),
            "-out", str(certificate), "-days", "1", "-subj", "/CN=operator")
    spki = openssl("x509", "-in", str(certificate), "-pubkey", "-noout")
    digest = openssl("dgst", "-sha256", "-binary", data=openssl("pkey", "-pubin", "-outform", "DER", data=spki))
    der = openssl("x509", "-in", str(certificate), "-outform", "DER")
    assert key_pin(der) == "sha256//" + base64.b64encode(digest).decode()
    with pytest.raises(ValueError):
        key_pin(der[:40])


def test_a_card_vouches_only_with_its_peers_signature(tmp_path: Path) -> None:
    key = tmp_path / "id.pem"
    openssl("genpkey", "-algorithm", "ed25519", "-out", str(key))
    peer = openssl("pkey", "-in", str(key), "-pubout", "-outform", "DER")[-32:].hex()
    pin = "sha256//" + base64.b64encode(bytes(32)).decode()
    (tmp_path / "message").write_bytes(f"hivemind tls key {pin}".encode())
    signature = openssl("pkeyutl", "-sign", "-inkey", str(key), "-rawin", "-in", str(tmp_path / "message")).hex()
    card = {"peer_id": peer, "tls": {"key_pin": pin, "signature": signature}, "membership": None}
    assert vouched_pin(card, peer) == pin
    assert vouched_pin(card, "ab" * 32) is None  # another peer's address
    tampered = pin[:8] + "B" + pin[9:]  # another key's pin under the same signature
    assert vouched_pin({**card, "tls": {"key_pin": tampered, "signature": signature}}, peer) is None
    assert vouched_pin({**card, "tls": None}, peer) is None
    assert vouched_pin("not a card", peer) is None
