"""The torch layers over the gateway: outputs and gradients against local torch experts with the hosts' own
parameters (to 1e-4), and against finite differences of the remote layer itself."""
import pytest
import torch

from hivemind_mesh import (ExpertHostClient, FeedforwardBlock, LocalMixtureOfExperts, MeshError, RemoteExpert,
                           RemoteMixtureOfExperts, RemoteSwitchMixtureOfExperts)

from .conftest import FFN_UIDS, GRID, HIDDEN


@pytest.fixture(scope="module")
def experts(mesh):
    host = ExpertHostClient(mesh.ffn_host)
    return {uid: FeedforwardBlock.from_host_state(host.state(uid)) for uid in FFN_UIDS}


def remote_moe(mesh, **kwargs):
    torch.manual_seed(0)
    return RemoteMixtureOfExperts(in_features=HIDDEN, grid_size=GRID, uid_prefix="ffn.", gateway=mesh.gateway, **kwargs)


def gradients(module, x, upstream, extra=lambda output: 0):
    x = x.clone().requires_grad_()
    module.zero_grad()
    output = module(x)
    main = output[0] if isinstance(output, tuple) else output
    ((main * upstream).sum() + extra(output)).backward()
    return output, x.grad, {name: p.grad.clone() for name, p in module.named_parameters() if name.startswith("proj.")}


def test_remote_moe_equals_a_local_moe_with_the_same_experts(mesh, experts):
    remote = remote_moe(mesh, k_best=3)
    local = LocalMixtureOfExperts(in_features=HIDDEN, grid_size=GRID, uid_prefix="ffn.", k_best=3, experts=experts)
    local.proj.load_state_dict(remote.proj.state_dict())
    x, upstream = torch.randn(5, 4, HIDDEN), torch.randn(5, 4, HIDDEN)  # [batch, seq, d]: each vector routed on its own
    y_remote, gx_remote, gp_remote = gradients(remote, x, upstream)
    y_local, gx_local, gp_local = gradients(local, x, upstream)
    assert y_remote.shape == x.shape
    torch.testing.assert_close(y_remote, y_local, rtol=0, atol=1e-4)
    torch.testing.assert_close(gx_remote, gx_local, rtol=0, atol=1e-4)
    for name in gp_remote:
        torch.testing.assert_close(gp_remote[name], gp_local[name], rtol=0, atol=1e-4)
    assert gp_remote["proj.weight"].abs().sum() > 0


def directional_check(module, x, objective, h=1e-3):
    """<analytic gradient, v> against a central difference of the objective along a random direction v of x and the gate."""
    torch.manual_seed(1)
    vx, vw = torch.randn_like(x), torch.randn_like(module.proj.weight)
    gate = module.proj.weight.detach().clone()
    xx = x.clone().requires_grad_()
    module.zero_grad()
    objective(module, xx).backward()
    analytic = float((xx.grad * vx).sum() + (module.proj.weight.grad * vw).sum())
    values = []
    with torch.no_grad():
        for sign in (1, -1):
            module.proj.weight.copy_(gate + sign * h * vw)
            values.append(float(objective(module, x + sign * h * vx)))
        module.proj.weight.copy_(gate)
    numeric = (values[0] - values[1]) / (2 * h)
    assert abs(numeric - analytic) <= 1e-2 * max(1.0, abs(analytic)), (numeric, analytic)


def test_remote_moe_gradients_match_finite_differences(mesh):
    remote = remote_moe(mesh, k_best=2)
    x, upstream = torch.randn(6, HIDDEN), torch.randn(6, HIDDEN)
    directional_check(remote, x, lambda m, x: (m(x) * upstream).sum())


def local_switch(experts, proj, x, utilization, alpha=0.9, coefficient=0.5, upstream=None):
    """The reference's Switch layer in plain torch, all experts alive: per-dimension softmaxes, the best expert
    (the per-dimension argmaxes), a residual, the utilisation update and the balancing loss over it."""
    scores = proj(x)
    probabilities = torch.split(scores, GRID, dim=-1)
    probabilities = [torch.softmax(p, dim=-1) for p in probabilities]
    chosen = [p.argmax(dim=-1) for p in probabilities]
    weight = torch.ones(x.shape[0])
    for p, c in zip(probabilities, chosen):
        weight = weight * p.gather(1, c[:, None]).squeeze(1)
    expert_out = torch.stack([experts[f"ffn.{int(i)}.{int(j)}"](x[b:b + 1])[0] for b, (i, j) in enumerate(zip(*chosen))])
    output = x + weight[:, None] * expert_out
    fractions = torch.cat([torch.bincount(c, minlength=n).float() / x.shape[0] for c, n in zip(chosen, GRID)])
    updated = alpha * utilization + (1 - alpha) * fractions
    loss = sum(n * (p.mean(dim=0) * u).sum() for n, p, u in zip(GRID, probabilities, torch.split(updated, GRID)))
    return output, loss, updated


def test_remote_switch_equals_the_reference_formulas_with_the_same_experts(mesh, experts):
    torch.manual_seed(0)
    remote = RemoteSwitchMixtureOfExperts(in_features=HIDDEN, grid_size=GRID, uid_prefix="ffn.", gateway=mesh.gateway, jitter_eps=0.0)
    x, upstream = torch.randn(7, HIDDEN), torch.randn(7, HIDDEN)
    utilization = remote.grid_utilization.clone()
    proj = torch.nn.Linear(HIDDEN, sum(GRID))
    proj.load_state_dict(remote.proj.state_dict())
    xl = x.clone().requires_grad_()
    y_local, loss_local, updated = local_switch(experts, proj, xl, utilization)
    ((y_local * upstream).sum() + 0.5 * loss_local).backward()
    (y_remote, loss_remote), gx, gp = gradients(remote, x, upstream, lambda out: 0.5 * out[1])
    torch.testing.assert_close(y_remote, y_local.detach(), rtol=0, atol=1e-4)
    assert abs(float(loss_remote.detach()) - float(loss_local.detach())) < 1e-4
    torch.testing.assert_close(remote.grid_utilization, updated, rtol=0, atol=1e-6)
    torch.testing.assert_close(gx, xl.grad, rtol=0, atol=1e-4)
    torch.testing.assert_close(gp["proj.weight"], proj.weight.grad, rtol=0, atol=1e-4)
    torch.testing.assert_close(gp["proj.bias"], proj.bias.grad, rtol=0, atol=1e-4)


def test_remote_switch_gradients_match_finite_differences(mesh):
    torch.manual_seed(0)
    remote = RemoteSwitchMixtureOfExperts(in_features=HIDDEN, grid_size=GRID, uid_prefix="ffn.", gateway=mesh.gateway)
    remote.eval()  # no jitter, a fixed utilisation: the same function at every evaluation
    x, upstream = torch.randn(6, HIDDEN), torch.randn(6, HIDDEN)

    def objective(module, x):
        output, loss = module(x)
        return (output * upstream).sum() + 0.5 * loss

    directional_check(remote, x, objective)


def test_remote_expert_is_the_hosts_expert(mesh, experts):
    expert = RemoteExpert("ffn.1.2", mesh.gateway)  # through the gateway's proxy
    x = torch.randn(4, HIDDEN, requires_grad=True)
    y = expert(x)
    upstream = torch.randn_like(y)
    (y * upstream).sum().backward()
    xl = x.detach().clone().requires_grad_()
    y_local = experts["ffn.1.2"](xl)
    (y_local * upstream).sum().backward()
    torch.testing.assert_close(y, y_local.detach(), rtol=0, atol=1e-5)
    torch.testing.assert_close(x.grad, xl.grad, rtol=0, atol=1e-5)


def test_no_expert_alive_is_an_error_unless_zero_outputs_are_allowed(mesh):
    kwargs = dict(in_features=HIDDEN, grid_size=GRID, uid_prefix="gone.", k_best=2, gateway=mesh.gateway)
    with pytest.raises(MeshError) as raised:
        RemoteMixtureOfExperts(**kwargs)(torch.randn(3, HIDDEN))
    assert raised.value.code == "not_enough_experts"
    layer = RemoteMixtureOfExperts(allow_zero_outputs=True, **kwargs)
    x = torch.randn(3, HIDDEN, requires_grad=True)
    y = layer(x)
    y.sum().backward()
    assert torch.equal(y, torch.zeros(3, HIDDEN)) and torch.equal(x.grad, torch.zeros(3, HIDDEN))
