"""Bring your own networks: a module of the recording protocol beside plain PyTorch RNNs.

Run:  python python/own_network.py  (about 10 seconds on 2 cores)

A user's task as tensors (context-dependent integration: integrate input 0 or
input 1, as channel 2 says), four networks trained in plain PyTorch (an nn.GRU,
a ReLU nn.RNN, a leaky CTRNN with dt / tau = 0.2, and ``TwoAreaRNN`` below, a
module of one's own), one population, one meta-model, and the fixed points of
every network through ``find_fixed_points`` (the module's own ``step``).

The recording protocol (``Population.from_modules``):
    record(x [B, T, I]) -> (hidden [B, T, d], outputs [B, T, C]); state_size = d; input_size = I;
    arch: a label; step(x [B, I], z [B, d]) -> z' [B, d] (optional: fixed points, fidelity);
    dynamo_ext.population.step.run_steps(step, x, d) runs a step map over a sequence.
"""
import torch
from torch import nn

import dynamo_ext as de
from dynamo_ext.population.step import run_steps


class TwoAreaRNN(nn.Module):
    """Two tanh areas: area A sees the input, area B sees A; the readout reads B. State z = [h_A; h_B]."""

    arch = "two-area"

    def __init__(self, input_size: int, n: int, n_outputs: int):
        super().__init__()
        self.input_size, self.hidden_size, self.state_size = input_size, n, 2 * n
        self.area_a = nn.RNNCell(input_size, n)
        self.area_b = nn.Linear(2 * n, n)
        self.readout = nn.Linear(n, n_outputs)

    def step(self, x, z):
        n = self.hidden_size
        h_a = self.area_a(x, z[:, :n])
        h_b = torch.tanh(self.area_b(torch.cat([h_a, z[:, n:]], -1)))
        return torch.cat([h_a, h_b], -1)

    def record(self, x):
        states = run_steps(self.step, x, self.state_size)  # [B, T, state_size]
        return states, self.readout(states[..., self.hidden_size:])

    def forward(self, x):
        return self.record(x)[1]


def integration_task(n: int, T: int = 20, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    signal = torch.randn(n, T, 2, generator=g) * 0.5
    context = torch.randint(0, 2, (n,), generator=g)
    x = torch.cat([signal, context.float()[:, None, None].expand(n, T, 1)], -1)
    y = 0.2 * signal.gather(2, context[:, None, None].expand(n, T, 1)).cumsum(1)
    return x, y


def train(net, task, epochs=150, seed=0):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(epochs):
        loss = nn.functional.mse_loss(net(task.x_train), task.y_train)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


class WithReadout(nn.Module):
    def __init__(self, rnn, n_outputs):
        super().__init__()
        self.rnn, self.readout = rnn, nn.Linear(rnn.hidden_size, n_outputs)

    def forward(self, x):
        return self.readout(self.rnn(x)[0])


def main():
    torch.manual_seed(0)
    task = de.TaskData.from_tensors("context-integration", *integration_task(400), *integration_task(200, seed=1))
    nets = [WithReadout(nn.GRU(3, 16, batch_first=True), 1),
            WithReadout(nn.RNN(3, 16, nonlinearity="relu", batch_first=True), 1),
            WithReadout(de.CTRNN(3, 16, dt=20.0, tau=100.0), 1)]
    nets = [train(n, task, seed=i) for i, n in enumerate(nets)]
    own = train(TwoAreaRNN(3, 8, 1), task, seed=3)
    pop = de.Population.from_modules([(n.rnn, n.readout) for n in nets] + [own], task,
                                     ids=["gru", "relu-rnn", "ctrnn", "two-area"])
    print(pop)
    result = de.fit(pop, steps=600, state_size=16, progress=False)
    print(result)
    for member, context in ((m, c) for m in pop.members for c in (0.0, 1.0)):
        x_star = torch.tensor([0.0, 0.0, context])
        fps = de.find_fixed_points(member.model, inputs=x_star, trajectories=pop.record(task.x_test[:32],
                                   models=[pop.index(member.id)]).hidden[0], n_inits=128, noise=0.05)
        print(f"{member.id:9s} context {context:.0f}: {fps}")


if __name__ == "__main__":
    main()
