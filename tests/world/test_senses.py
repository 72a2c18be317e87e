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
    grid = NeighbourGrid(int(w), int(h), r, per_cell=64, device=torch.device("cpu"))
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
