"""The REST clients against live services: each route the clients cover, and errors as MeshError with the service's code."""
import threading
import time

import numpy as np
import pytest

from hivemind_mesh import AveragerClient, DHTClient, ExpertHostClient, GatewayClient, MeshError, MixtureSettings
from hivemind_mesh.safetensors import decode, encode

from .conftest import FFN_UIDS, GRID, HIDDEN


def test_dht_records_and_dictionaries(mesh):
    dht = DHTClient(mesh.dht)
    assert dht.store("client-test", {"a": [1, 2]}, ttl=30)["stored"]
    entry = dht.get("client-test")
    assert entry["value"] == {"a": [1, 2]} and entry["expiration_time"] > time.time()
    dht.store("client-dict", 1, ttl=30, subkey="x")
    dht.store("client-dict", 2, ttl=30, subkey="y")
    assert {k: v["value"] for k, v in dht.get("client-dict")["subkeys"].items()} == {"x": 1, "y": 2}
    assert dht.get("never-stored") is None
    assert dht.get_many(["client-test", "never-stored"])[1] is None
    assert dht.store("with/slash", True, ttl=30)["stored"] and dht.get("with/slash")["value"] is True
    assert dht.node()["records"] >= 1


def test_service_errors_arrive_with_the_services_code(mesh):
    with pytest.raises(MeshError) as raised:
        DHTClient(mesh.dht).store("past", 1, expiration=time.time() - 100)
    assert raised.value.status == 422 and raised.value.code and "expir" in raised.value.message
    with pytest.raises(MeshError) as raised:
        AveragerClient(mesh.averagers[0]).step("no-such-run", "t", 0, 1, {"x": np.ones(2, np.float32)})
    assert (raised.value.status, raised.value.code) == (404, "not_found")
    with pytest.raises(MeshError) as raised:
        GatewayClient(mesh.gateway).moe_forward(np.ones((2, HIDDEN), np.float32), np.zeros((2, 5), np.float32),
                                                MixtureSettings("nothing.", GRID, k_best=2))
    assert (raised.value.status, raised.value.code) == (503, "not_enough_experts")
    with pytest.raises(MeshError) as raised:
        ExpertHostClient("http://127.0.0.1:9").experts()  # nothing listens on the discard port
    assert raised.value.code == "unreachable" and raised.value.status is None


def test_a_dead_replica_is_skipped(mesh):
    gateway = GatewayClient(["http://127.0.0.1:9", mesh.gateway], timeout=5)
    assert sorted(e["uid"] for e in gateway.experts("ffn.")) == sorted(FFN_UIDS)
    assert gateway.url == mesh.gateway


def test_health_readiness_metrics_and_the_mesh_view(mesh):
    gateway = GatewayClient(mesh.gateway)
    assert gateway.health() == {"status": "ok"}
    ready, checks = gateway.ready()
    assert ready and checks["dht"] == "ok"
    assert "hivemind_gateway_" in gateway.metrics()
    snapshot = gateway.mesh(prefix="ffn.", grid=GRID)
    assert {e["uid"] for e in snapshot["experts"]["experts"]} == set(FFN_UIDS)
    host = ExpertHostClient(mesh.ffn_host)
    assert {e["uid"] for e in host.experts()} == set(FFN_UIDS)
    state = host.state("ffn.0.0")
    assert state["ffn.weight"].shape == (4 * HIDDEN, HIDDEN)


def test_averaging_rounds_and_shared_state(mesh):
    a, b = AveragerClient(mesh.averagers[0]), AveragerClient(mesh.averagers[1])
    results = {}

    def average(client, value, weight):
        results[value] = client.average({"x": np.full(3, value, np.float32)}, "client-avg", weight=weight, timeout=10, gather={"v": value})

    threads = [threading.Thread(target=average, args=(a, 1.0, 1)), threading.Thread(target=average, args=(b, 4.0, 3))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    for value in (1.0, 4.0):
        tensors, record = results[value]
        np.testing.assert_allclose(tensors["x"], np.full(3, (1 * 1 + 4 * 3) / 4), rtol=1e-6)
        assert {m["metadata"]["v"] for m in record["members"]} == {1.0, 4.0}
    round_id = a.schedule_round({"x": np.ones(2, np.float32)}, "client-lonely", timeout=0.5)
    assert a.round_status(round_id, wait=20)["status"] == "failed"
    body = encode({"w": np.arange(6, dtype=np.float32)}, {"epoch": "3"})
    assert a.share_state(body, "client-state", priority=3)["bytes"] == len(body)
    loaded, donor = b.load_state("client-state", timeout=10)
    assert loaded == body and donor == a.info()["address"]  # the donor as groups name it: its URL with its peer id
    assert b.load_state("client-nobody", timeout=1) is None
    # Under a codec, large float32 tensors travel as float16 and come back float32; small ones exact.
    weights = np.random.default_rng(5).standard_normal(4096).astype(np.float32)
    a.share_state(encode({"w": weights, "step": np.array(70001, np.float32)}, {"epoch": "4"}), "client-state-16")
    loaded, _ = b.load_state("client-state-16", timeout=10, codec="float16")
    tensors, metadata = decode(loaded)
    assert tensors["w"].dtype == np.float32 and metadata == {"epoch": "4"} and tensors["step"] == 70001
    np.testing.assert_array_equal(tensors["w"], weights.astype(np.float16).astype(np.float32))
    assert a.info()["mode"] == "node"


def test_a_run_configured_reported_stepped_and_left(mesh):
    averager = AveragerClient(mesh.averagers[0])
    run = averager.configure_run("client-run", 4, averaging_timeout=2, min_refresh_period=0.2, max_refresh_period=1)
    assert run["settings"]["target_batch_size"] == 4
    answer = averager.report_progress("client-run", "solo", 0, 4, samples_per_second=10, loss=1.5)
    assert answer["action"] == "step" and answer["epoch"] == 0
    result = averager.step("client-run", "solo", 0, 4, {"g": np.array([1.0, -2.0], np.float32)}, codec="float16", averaging_timeout=2)
    np.testing.assert_array_equal(result.tensors["g"], [1.0, -2.0])
    assert result.epoch == 1 and not result.averaged
    assert averager.run("client-run")["trainers"]["solo"]["epoch"] == 1
    averager.leave_run("client-run", "solo")
    assert "solo" not in averager.run("client-run")["trainers"]
