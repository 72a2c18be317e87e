"""The CPU step holds torch to one thread (its kernels are serial; a waiting pool slowed it 4x
beside a busy core) and gives the caller's thread count back afterwards, also on an error."""

from __future__ import annotations

import pytest
import torch

import alife
from tests.conftest import SMALL


class Probe:
    """Records torch's thread count inside the step (after act and at the step's end)."""

    def __init__(self, fail: bool = False):
        self.seen: list[int] = []
        self.fail = fail

    @alife.hookimpl
    def alife_after_act(self, sim, slots, actions):
        self.seen.append(torch.get_num_threads())
        if self.fail:
            raise RuntimeError("boom")

    @alife.hookimpl
    def alife_step_end(self, sim, step):
        self.seen.append(torch.get_num_threads())


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_cpu_step_runs_on_one_thread_and_restores(two_threads):
    probe = Probe()
    sim = alife.Simulation(seed=1, device="cpu", overrides=dict(SMALL), plugins=[probe])
    if not sim._cpu:
        pytest.skip("numba is not importable: the CPU step is torch's")
    sim.run(3)
    assert probe.seen and set(probe.seen) == {1}
    assert torch.get_num_threads() == 2
    sim.close()


def test_pettingzoo_step_runs_on_one_thread_and_restores(two_threads):
    probe = Probe()
    env = alife.make_env(seed=1, overrides=dict(SMALL), device="cpu", plugins=[probe])
    env.reset(seed=1)
    env.step({a: env.action_space(a).sample() for a in env.agents})
    assert probe.seen and set(probe.seen) == {1}
    assert torch.get_num_threads() == 2
    env.close()


def test_thread_count_restored_after_an_error(two_threads):
    sim = alife.Simulation(seed=1, device="cpu", overrides=dict(SMALL), plugins=[Probe(fail=True)])
    with pytest.raises(Exception, match="boom"):
        sim.step()
    assert torch.get_num_threads() == 2
    sim.close()


def test_a_caller_on_one_thread_is_left_alone():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        probe = Probe()
        sim = alife.Simulation(seed=1, device="cpu", overrides=dict(SMALL), plugins=[probe])
        sim.run(2)
        assert set(probe.seen) == {1} and torch.get_num_threads() == 1
        sim.close()
    finally:
        torch.set_num_threads(before)
