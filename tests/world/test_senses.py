"""The neighbour grid finds exactly the brute-force nearest agent when cells are not crowded."""

import math

import torch

from alife.world.senses import NeighbourGrid


def brute_nearest(pos, alive, w, h, r):
    d = pos.unsqueeze(0) - pos.unsqueeze(1)  # [i, j, 2] = pos[j] - pos[i]
    d[..., 0] -= w * torch.round(d[..., 0] / w)
    d[..., 1] -= h * torch.round(d[..., 1] / h)
    d2 = (d * d).sum(-1)
    n = pos.shape[0]
    d2[torch.arange(n), torch.arange(n)] = math.inf
    d2[:, ~alive] = math.inf
    best, j = d2.min(1)
    seen = (best <= r * r) & alive
    return torch.where(seen, j, -1), best.sqrt()


def test_nearest_matches_brute_force_on_a_torus():
    g = torch.Generator().manual_seed(0)
    w, h, r = 40.0, 30.0, 2.0
    n = 200
    pos = torch.rand(n, 2, generator=g) * torch.tensor([w, h])
    alive = torch.rand(n, generator=g) < 0.9
    grid = NeighbourGrid(int(w), int(h), r, per_cell=64, device=torch.device("cpu"), exact_cpu=False)
    j, off, dist = grid.nearest(pos, alive, r)
    jb, db = brute_nearest(pos, alive, w, h, r)
    assert torch.equal(j, jb)
    seen = j >= 0
    assert seen.sum() > 50 and (~seen & alive).sum() > 5  # both cases occur
    torch.testing.assert_close(dist[seen], db[seen])
    # the offset points from the agent to its neighbour, across the seam where shorter
    tgt = pos[j[seen]]
    back = torch.remainder(pos[seen] + off[seen], torch.tensor([w, h]))
    torch.testing.assert_close(back, tgt, atol=1e-4, rtol=0)
    assert (off[seen].norm(dim=1) <= r + 1e-5).all()


def test_dead_agents_are_invisible():
    pos = torch.tensor([[5.0, 5.0], [5.5, 5.0], [6.5, 5.0]])
    alive = torch.tensor([True, False, True])
    grid = NeighbourGrid(20, 20, 3.0, per_cell=4, device=torch.device("cpu"))
    j, _, dist = grid.nearest(pos, alive, 3.0)
    assert j.tolist() == [2, -1, 0]
    assert dist[0].item() == 1.5


def test_cpu_kernel_and_torch_path_agree_when_cells_are_not_crowded():
    from alife.world.kernels import HAVE_NUMBA
    if not HAVE_NUMBA:
        import pytest
        pytest.skip("numba not installed")
    g = torch.Generator().manual_seed(1)
    w, h, r = 50, 40, 2.5
    pos = torch.rand(250, 2, generator=g) * torch.tensor([float(w), float(h)])
    alive = torch.rand(250, generator=g) < 0.8
    fast = NeighbourGrid(w, h, r, per_cell=64, device=torch.device("cpu"), exact_cpu=True)
    slow = NeighbourGrid(w, h, r, per_cell=64, device=torch.device("cpu"), exact_cpu=False)
    a, b = fast.nearest(pos, alive, r), slow.nearest(pos, alive, r)
    assert torch.equal(a[0], b[0])
    torch.testing.assert_close(a[1], b[1])
    torch.testing.assert_close(a[2], b[2])


def test_small_grids_do_not_double_count_cells():
    # a world narrower than three cells: the 3x3 block wraps onto itself
    pos = torch.tensor([[0.5, 0.5], [4.0, 0.5], [2.0, 3.5]])
    alive = torch.ones(3, dtype=torch.bool)
    for exact in (True, False):
        grid = NeighbourGrid(5, 5, 2.0, per_cell=8, device=torch.device("cpu"), exact_cpu=exact)
        j, off, dist = grid.nearest(pos, alive, 2.0)
        assert j.tolist() == [1, 0, -1]
        torch.testing.assert_close(dist[:2], torch.tensor([1.5, 1.5]))


def test_cpu_kernel_matches_brute_force_in_crowds():
    from alife.world.kernels import HAVE_NUMBA
    if not HAVE_NUMBA:
        import pytest
        pytest.skip("numba not installed")
    g = torch.Generator().manual_seed(2)
    w, h, r = 20.0, 20.0, 3.0
    pos = torch.rand(600, 2, generator=g) * 20.0  # ~13 agents per grid cell
    alive = torch.ones(600, dtype=torch.bool)
    grid = NeighbourGrid(20, 20, r, per_cell=1, device=torch.device("cpu"), exact_cpu=True)
    j, _, dist = grid.nearest(pos, alive, r)
    jb, db = brute_nearest(pos, alive, w, h, r)
    torch.testing.assert_close(dist, db.clamp(max=r))
    assert (j == jb).float().mean() > 0.99  # equal up to exact distance ties


def test_fused_cpu_observations_match_the_torch_path():
    from alife.world.kernels import HAVE_NUMBA
    if not HAVE_NUMBA:
        import pytest
        pytest.skip("numba not installed")
    import alife
    from alife.world.senses import observe

    sim = alife.Simulation(seed=4, device="cpu", overrides={"world.width": 24, "world.height": 24,
                                                            "world.initial_agents": 150})
    sim.run(30)
    st, n = sim.world, sim.world.hw
    nb, off, dist = sim.grid.nearest(st.pos[:n], st.alive[:n], sim.config.agent.sense_radius)
    tags = sim.layout.view(st.genomes[:n], "compatibility.tag")
    a = observe(st, nb, off, dist, sim.config, tags, torch.zeros(n, sim.n_obs), fused=True)
    b = observe(st, nb, off, dist, sim.config, tags, torch.zeros(n, sim.n_obs), fused=False)
    assert (nb >= 0).sum() > 20
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
