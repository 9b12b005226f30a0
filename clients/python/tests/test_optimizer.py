"""The collaborative Optimizer and DiLoCo through real averagers, checked against steps computed by hand.

Trainers run as separate processes (forked, so torch is imported once), each with its own averager, as
a swarm's trainers would; each has a fixed batch of its own, so the test can recompute every gradient.
"""
import multiprocessing
import time

import pytest
import torch

from hivemind_mesh import DiLoCoOptimizer, Optimizer

FORK = multiprocessing.get_context("fork")
SIZES = {"a": 3, "b": 5}  # each trainer's batch size: the samples behind its gradients differ
TRACKER = {"min_refresh_period": 0.1, "max_refresh_period": 0.5}


def batch(name):
    generator = torch.Generator().manual_seed(ord(name))
    return torch.randn(SIZES[name], 4, generator=generator), torch.randn(SIZES[name], 2, generator=generator)


def model():
    torch.manual_seed(0)  # every trainer of a run starts from the same parameters
    return torch.nn.Linear(4, 2)


def loss_of(net, name):
    x, y = batch(name)
    return torch.nn.functional.mse_loss(net(x), y)


def flat(net):
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


def run_trainers(target, trainers, *args):
    """Runs target(name, averager, barrier, queue, *args) in a process per (name, averager); their reports by name."""
    queue, barrier = FORK.Queue(), FORK.Barrier(len(trainers))
    processes = [FORK.Process(target=target, args=(name, averager, barrier, queue, *args)) for name, averager in trainers]
    [p.start() for p in processes]
    results = {}
    try:
        for _ in processes:
            result = queue.get(timeout=120)
            result["final"] = torch.from_numpy(result["final"])  # sent as numpy: torch tensors would travel as shared memory
            results[result["name"]] = result
    finally:
        for p in processes:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
    return results


def epoch_trainer(name, averager, barrier, queue, make_optimizer, epochs):
    """Steps on its fixed batch until the run's epoch changes, `epochs` times; reports the calls each epoch took."""
    net = model()
    opt = make_optimizer(net, name, averager)
    barrier.wait()
    time.sleep(0.5)  # both trainers' progress records are in the DHT before either can end an epoch
    calls = []
    for _ in range(epochs):
        epoch, count = opt.local_epoch, 0
        while opt.local_epoch == epoch:
            opt.zero_grad()
            loss_of(net, name).backward()
            opt.step()
            count += 1
        calls.append(count)
    opt.shutdown()
    queue.put({"name": name, "calls": calls, "final": flat(net).numpy(), "epoch": opt.local_epoch, "rounds": opt.averaging_rounds})


def gradient_optimizer(net, name, averager):
    return Optimizer(run_id="opt-two", target_batch_size=16, optimizer=torch.optim.SGD(net.parameters(), lr=0.1), params=net.named_parameters(),
                     averager=averager, batch_size_per_step=SIZES[name], trainer=name, averaging_timeout=15, tracker_opts=TRACKER)


def step_by_hand(net, results, epoch):
    """One epoch's SGD step by hand: p -= lr * (s_a g_a + s_b g_b) / (s_a + s_b), with s = calls x batch size."""
    samples = {name: results[name]["calls"][epoch] * SIZES[name] for name in SIZES}
    grads = {}
    for name in SIZES:
        net.zero_grad()
        loss_of(net, name).backward()
        grads[name] = [p.grad.clone() for p in net.parameters()]
    with torch.no_grad():
        for i, p in enumerate(net.parameters()):
            p -= 0.1 * sum(samples[n] * grads[n][i] for n in SIZES) / sum(samples.values())


def test_two_trainer_processes_take_the_samples_weighted_step(mesh):
    results = run_trainers(epoch_trainer, list(zip(SIZES, mesh.averagers)), gradient_optimizer, 2)
    assert results["a"]["epoch"] == results["b"]["epoch"] == 2 and results["a"]["rounds"] == 2
    net = model()
    for epoch in range(2):
        step_by_hand(net, results, epoch)
    assert torch.equal(results["a"]["final"], results["b"]["final"])
    torch.testing.assert_close(results["a"]["final"], flat(net), rtol=0, atol=1e-6)
    assert not torch.allclose(flat(net), flat(model()))


def delayed_trainer(name, averager, barrier, queue):
    """Epoch 0 with delay_grad_averaging: its averaging runs while the trainer keeps computing at the same parameters."""
    net = model()
    opt = Optimizer(run_id="opt-delayed", target_batch_size=16, optimizer=torch.optim.SGD(net.parameters(), lr=0.1), params=net.named_parameters(),
                    averager=averager, batch_size_per_step=SIZES[name], trainer=name, averaging_timeout=15, tracker_opts=TRACKER,
                    delay_grad_averaging=True)
    barrier.wait()
    time.sleep(0.5)
    start, calls, stale = flat(net), 0, True
    while not opt.averaging_in_background:
        opt.zero_grad()
        loss_of(net, name).backward()
        opt.step()
        calls += 1
    handed_over_at = opt.local_epoch
    while opt.local_epoch == handed_over_at:
        stale = stale and torch.equal(flat(net), start)  # computing on while epoch 0 averages: no step taken yet
        opt.zero_grad()
        loss_of(net, name).backward()
        opt.step()
    first, epoch, rounds = flat(net), opt.local_epoch, opt.averaging_rounds  # the step that applied epoch 0 may hand epoch 1 over
    opt.shutdown()
    queue.put({"name": name, "calls": [calls], "final": first.numpy(), "epoch": epoch, "rounds": rounds,
               "handed_over_at": handed_over_at, "stale": stale})


def test_delayed_gradient_averaging_overlaps_compute_and_applies_the_step_late(mesh):
    results = run_trainers(delayed_trainer, list(zip(SIZES, mesh.averagers)))
    for name in SIZES:
        assert results[name]["handed_over_at"] == 0 and results[name]["stale"], results[name]
        assert results[name]["epoch"] == 1 and results[name]["rounds"] >= 1, results[name]
    net = model()
    step_by_hand(net, results, 0)  # epoch 0's gradients, all at the starting parameters
    assert torch.equal(results["a"]["final"], results["b"]["final"])
    torch.testing.assert_close(results["a"]["final"], flat(net), rtol=0, atol=1e-6)


def test_delay_grad_averaging_is_refused_with_local_updates():
    with pytest.raises(ValueError, match="use_local_updates"):
        Optimizer(run_id="x", target_batch_size=1, optimizer=torch.optim.SGD(model().parameters(), lr=0.1), averager="http://127.0.0.1:9",
                  use_local_updates=True, delay_grad_averaging=True)


def local_updates_optimizer(net, name, averager):
    return Optimizer(run_id="opt-local", target_batch_size=16, optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
                     params=net.named_parameters(), averager=averager, batch_size_per_step=SIZES[name], trainer=name, averaging_timeout=15,
                     tracker_opts=TRACKER, use_local_updates=True, average_opt_statistics=("momentum_buffer",))


def test_local_updates_average_parameters_and_momentum_weighted_by_samples(mesh):
    results = run_trainers(epoch_trainer, list(zip(SIZES, mesh.averagers)), local_updates_optimizer, 2)
    assert results["a"]["rounds"] == results["b"]["rounds"] == 2
    # By hand: each trainer takes its SGD-with-momentum steps from the shared start, then parameters and
    # momentum buffers are averaged, weighted by the samples behind each.
    params, buffers = [p.detach().clone() for p in model().parameters()], None
    for epoch in range(2):
        ends = {}
        for name in SIZES:
            net = model()
            with torch.no_grad():
                for p, value in zip(net.parameters(), params):
                    p.copy_(value)
            sgd = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
            if buffers is not None:
                for p, buffer in zip(net.parameters(), buffers):
                    sgd.state[p]["momentum_buffer"] = buffer.clone()
            for _ in range(results[name]["calls"][epoch]):
                sgd.zero_grad()
                loss_of(net, name).backward()
                sgd.step()
            ends[name] = ([p.detach().clone() for p in net.parameters()], [sgd.state[p]["momentum_buffer"] for p in net.parameters()])
        weights = {name: results[name]["calls"][epoch] * SIZES[name] for name in SIZES}
        total = sum(weights.values())
        params = [sum(weights[n] * ends[n][0][i] for n in SIZES) / total for i in range(len(params))]
        buffers = [sum(weights[n] * ends[n][1][i] for n in SIZES) / total for i in range(len(params))]
    expected = torch.cat([p.reshape(-1) for p in params])
    assert torch.equal(results["a"]["final"], results["b"]["final"])
    torch.testing.assert_close(results["a"]["final"], expected, rtol=0, atol=1e-6)


def test_load_state_from_peers_restores_parameters_and_optimizer_state_exactly(mesh):
    donor_net = model()
    adam = torch.optim.Adam(donor_net.parameters(), lr=0.01)
    donor = Optimizer(run_id="opt-state", target_batch_size=3, optimizer=adam, params=donor_net.named_parameters(),
                      scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5), averager=mesh.averagers[0],
                      batch_size_per_step=3, trainer="donor", averaging_timeout=2, tracker_opts=TRACKER)
    for _ in range(3):  # alone in the run: every batch ends an epoch
        donor.zero_grad()
        loss_of(donor_net, "a").backward()
        donor.step()
    assert donor.local_epoch == 3
    torch.manual_seed(99)
    newcomer_net = torch.nn.Linear(4, 2)
    newcomer = Optimizer(run_id="opt-state", target_batch_size=3, optimizer=lambda p: torch.optim.Adam(p, lr=0.5),
                         params=newcomer_net.named_parameters(), scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5),
                         averager=mesh.averagers[1], batch_size_per_step=3, trainer="newcomer", tracker_opts=TRACKER)
    assert newcomer.load_state_from_peers()
    expected, got = donor.state_dict(), newcomer.state_dict()
    assert got["local_epoch"] == 3
    for name, value in expected["parameters"].items():
        assert torch.equal(got["parameters"][name], value)
    for index, state in expected["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(got["optimizer"]["state"][index][key], value), key
    assert got["optimizer"]["param_groups"][0]["lr"] == expected["optimizer"]["param_groups"][0]["lr"] == 0.01 * 0.5 ** 3
    assert got["scheduler"] == expected["scheduler"]
    # Under a codec too: this model's tensors are all below the 1024 values a codec compresses, so still exact.
    compressed = Optimizer(run_id="opt-state", target_batch_size=3, optimizer=lambda p: torch.optim.Adam(p, lr=0.5),
                           params=torch.nn.Linear(4, 2).named_parameters(), averager=mesh.averagers[1], batch_size_per_step=3,
                           trainer="compressed", tracker_opts=TRACKER, load_state_compression="uniform_8bit")
    assert compressed.load_state_from_peers()
    for name, value in expected["parameters"].items():
        assert torch.equal(compressed.state_dict()["parameters"][name], value)
    donor.shutdown()
    newcomer.shutdown()
    compressed.shutdown()


def diloco_trainer(name, averager, barrier, queue, rounds):
    net = model()
    opt = DiLoCoOptimizer(run_id="opt-diloco", optimizer=torch.optim.SGD(net.parameters(), lr=0.1), params=net.named_parameters(), local_steps=3,
                          averager=averager, batch_size_per_step=SIZES[name], trainer=name, averaging_timeout=15, tracker_opts=TRACKER)
    barrier.wait()
    time.sleep(0.5)
    steps = 0
    while opt.local_epoch < rounds:
        opt.zero_grad()
        loss_of(net, name).backward()
        opt.step()
        steps += 1
    opt.shutdown()
    queue.put({"name": name, "final": flat(net).numpy(), "steps": steps, "rounds": opt.averaging_rounds})


def test_diloco_equals_a_hand_written_outer_nesterov_step(mesh):
    results = run_trainers(diloco_trainer, list(zip(SIZES, mesh.averagers)), 2)
    assert results["a"]["steps"] == results["b"]["steps"] == 6 and results["a"]["rounds"] == 2  # averaged every H = 3 steps
    net, momentum = model(), None
    for _ in range(2):
        start = [p.detach().clone() for p in net.parameters()]
        deltas = {}
        for name in SIZES:  # H inner SGD steps from the round's start, then the pseudo-gradient start - end
            with torch.no_grad():
                for p, s in zip(net.parameters(), start):
                    p.copy_(s)
            for _ in range(3):
                net.zero_grad()
                loss_of(net, name).backward()
                with torch.no_grad():
                    for p in net.parameters():
                        p -= 0.1 * p.grad
            deltas[name] = [s - p.detach() for p, s in zip(net.parameters(), start)]
        weights = {name: 3 * SIZES[name] for name in SIZES}
        delta = [sum(weights[n] * deltas[n][i] for n in SIZES) / sum(weights.values()) for i in range(len(start))]
        momentum = [d.clone() for d in delta] if momentum is None else [0.9 * m + d for m, d in zip(momentum, delta)]
        with torch.no_grad():
            for p, s, d, m in zip(net.parameters(), start, delta, momentum):
                p.copy_(s - 0.7 * (d + 0.9 * m))  # Nesterov: the step looks ahead along the momentum
    assert torch.equal(results["a"]["final"], results["b"]["final"])
    torch.testing.assert_close(results["a"]["final"], flat(net), rtol=0, atol=1e-6)
