"""The clients in a moderated TLS swarm: a DHT node and an averager started as members admit this
client with its membership (mutual TLS) and refuse it without one, naming what it lacks."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, List

import pytest

from hivemind_mesh import AveragerClient, DHTClient, LocalMesh, MeshError, Swarm, Transport
from hivemind_mesh import transport as transport_module

from .conftest import bin_dir


def hivemind(folder: Path, *arguments: str) -> Any:
    done = subprocess.run([os.path.join(bin_dir(), "hivemind"), *arguments], cwd=folder, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def member(folder: Path, name: str) -> List[str]:
    """A member's key and membership files, admitted by the swarm in ``folder``."""
    peer = hivemind(folder, "identity", "--identity", f"{name}.key")["peer_id"]
    hivemind(folder, "swarm", "admit", peer, "--expires", "1h", "--out", f"{name}.crt")
    return [str(folder / f"{name}.key"), str(folder / f"{name}.crt")]


def test_a_moderated_swarm_serves_its_members_only(tmp_path: Path) -> None:
    hivemind(tmp_path, "swarm", "init")
    ca = str(tmp_path / "swarm.crt")
    with LocalMesh(bin_dir()) as local:
        def start(product: str, name: str, *flags: str) -> str:
            key, certificate = member(tmp_path, name)
            return local.start(product, "--identity", key, "--swarm-ca", ca, "--swarm-cert", certificate, *flags).url

        dht = start("hivemind-dht", "dht")
        averager = start("hivemind-averager", "averager", "--dht", dht)
        assert dht.startswith("https://") and averager.startswith("https://")
        key, certificate = member(tmp_path, "trainer")
        inside = Transport(swarm=Swarm(ca, certificate, key))

        outsider = DHTClient(dht, transport=Transport(swarm=Swarm(ca)))
        with pytest.raises(MeshError) as refused:
            outsider.get("anything")
        assert refused.value.status == 401 and refused.value.code == "membership_required"
        assert outsider.health() == {"status": "ok"}  # probes stay open

        client = DHTClient(dht, transport=inside)
        assert client.store("swarm-key", {"a": 1}, ttl=60)["stored"]
        assert client.get("swarm-key")["value"] == {"a": 1}
        info = AveragerClient(averager, transport=inside).info()
        assert info["address"] == averager.replace("://", f"://{info['peer_id']}@", 1)
        # The peer address as groups name the averager reaches it too (the peer id is not sent).
        assert AveragerClient(info["address"], transport=inside).info()["peer_id"] == info["peer_id"]
        # The same address naming another member (the DHT node) is refused before anything is sent:
        # the certificate there holds the averager's key, not that member's.
        dht_peer = DHTClient(dht, transport=inside).node()["public_key"]
        with pytest.raises(MeshError) as impostor:
            AveragerClient(averager.replace("://", f"://{dht_peer}@", 1), transport=inside).info()
        assert impostor.value.code == "untrusted" and info["peer_id"] in impostor.value.message, impostor.value.message

        # A server that is no member of this swarm is not trusted.
        with LocalMesh(bin_dir()) as other:
            foreign = other.start("hivemind-dht", "--tls").url
            with pytest.raises(MeshError) as untrusted:
                DHTClient(foreign, transport=inside).node()
            assert untrusted.value.status is None and "certificate" in untrusted.value.message.lower()


def test_a_member_with_an_operators_certificate_is_reached_at_its_peer_address(tmp_path: Path) -> None:
    """A service serving an operator's certificate (``--tls-cert``, here P-256) vouches for its key with its
    identity card; the client accepts that key at the service's peer address, and at no other peer's."""
    hivemind(tmp_path, "swarm", "init")
    ca = str(tmp_path / "swarm.crt")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-keyout", str(tmp_path / "operator.key"), "-out", str(tmp_path / "operator.crt"), "-subj", "/CN=dht.example"],
                   check=True, capture_output=True)
    with LocalMesh(bin_dir()) as local:
        key, certificate = member(tmp_path, "dht")
        url = local.start("hivemind-dht", "--identity", key, "--swarm-ca", ca, "--swarm-cert", certificate,
                          "--tls-cert", str(tmp_path / "operator.crt"), "--tls-key", str(tmp_path / "operator.key")).url
        peer = hivemind(tmp_path, "identity", "--identity", "dht.key")["peer_id"]
        trainer_key, trainer_certificate = member(tmp_path, "trainer")
        inside = Transport(swarm=Swarm(ca, trainer_certificate, trainer_key))
        assert DHTClient(url.replace("://", f"://{peer}@", 1), transport=inside).node()["public_key"] == peer
        other = hivemind(tmp_path, "identity", "--identity", "other.key")["peer_id"]
        with pytest.raises(MeshError) as impostor:
            DHTClient(url.replace("://", f"://{other}@", 1), transport=inside).node()
        assert impostor.value.code == "untrusted" and "no card of that peer vouches" in impostor.value.message, impostor.value.message


def test_key_checking_adapters_are_bounded(tmp_path: Path) -> None:
    """Peer addresses come from records anyone writes: a session keeps at most MAX_PINNED_ORIGINS of them."""
    hivemind(tmp_path, "swarm", "init")
    transport = Transport(swarm=Swarm(str(tmp_path / "swarm.crt")))
    session = transport.session()
    for index in range(transport_module.MAX_PINNED_ORIGINS + 10):
        transport._pin(session, f"https://10.0.{index // 250}.{index % 250}:8000", "a" * 64)
    pinned = [prefix for prefix in session.adapters if prefix.startswith("https://10.")]
    assert 0 < len(pinned) <= transport_module.MAX_PINNED_ORIGINS
