"""Task policies: the genome's ``policy`` segment read as a network for a gymnasium space.

Vector observations (a ``Box`` of any shape that is not an image) go through the same two-layer
MLP the ecology brains use (:func:`alife.genome.mlp_forward`). Image observations (a ``uint8`` Box
of shape ``(H, W, C)``) get a small CNN: two stride-2 convolutions, then that MLP; the
per-genome convolutions run as one grouped ``conv2d`` (groups = number of genomes), so all
policies still take one forward pass. ``Discrete`` actions are the argmax of the outputs;
``Box`` actions are ``tanh`` outputs scaled to ``[low, high]`` (or linear outputs clipped).

The mutator and compatibility segments are the standard ones of :func:`alife.genome.make_layout`,
so the same mutation and mating plugins run unchanged (``../shared/seeds/neural-mutator.md``:
genome = policy + mutator + compatibility net, CNN policies for pixel tasks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from alife.config import BrainSection
from alife.errors import UserError
from alife.genome import Layout, extend_spec, make_layout, mlp_forward

#: CNN trunk for image observations: (out_channels, kernel, stride) per layer
CNN_LAYERS = ((8, 3, 2), (8, 3, 2))


class SpaceError(UserError):
    """A gymnasium space the task policies cannot drive (Dict, Tuple, MultiDiscrete, ...)."""


@dataclass(frozen=True)
class PolicySpec:
    """What a task's spaces ask of a policy."""

    obs_shape: tuple[int, ...]
    image: bool                  # (H, W, C) uint8 observation -> CNN trunk
    n_in: int                    # MLP input size (flattened features after the trunk)
    discrete: bool
    n_act: int                   # Discrete: number of actions; Box: flattened action size
    act_shape: tuple[int, ...]
    low: np.ndarray | None = None
    high: np.ndarray | None = None


def _conv_out(n: int, k: int, s: int) -> int:
    return (n - k) // s + 1


def policy_spec(observation_space, action_space) -> PolicySpec:
    """Read a gymnasium env's spaces; a space the policies cannot drive raises :class:`SpaceError`."""
    from gymnasium import spaces

    if not isinstance(observation_space, spaces.Box):
        raise SpaceError(f"observation space {observation_space} is not supported: only Box "
                         "(vectors of any shape, or (H, W, C) uint8 images)")
    shape = tuple(observation_space.shape)
    image = len(shape) == 3 and observation_space.dtype == np.uint8
    if image:
        h, w = shape[0], shape[1]
        for _, k, s in CNN_LAYERS:
            if h < k or w < k:
                raise SpaceError(f"image observation {shape} is too small for the CNN trunk")
            h, w = _conv_out(h, k, s), _conv_out(w, k, s)
        n_in = CNN_LAYERS[-1][0] * h * w
    else:
        n_in = int(math.prod(shape))
    if isinstance(action_space, spaces.Discrete):
        return PolicySpec(shape, image, n_in, True, int(action_space.n), ())
    if isinstance(action_space, spaces.Box):
        low = np.asarray(action_space.low, dtype=np.float32).reshape(-1)
        high = np.asarray(action_space.high, dtype=np.float32).reshape(-1)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise SpaceError(f"action space {action_space} is unbounded; task policies need finite low/high")
        return PolicySpec(shape, image, n_in, False, int(low.size), tuple(action_space.shape), low, high)
    raise SpaceError(f"action space {action_space} is not supported: only Discrete and Box")


def task_layout(spec: PolicySpec, brain: BrainSection, hidden: int, extra: tuple = ()) -> Layout:
    """The standard three-network layout sized for the task, with a CNN trunk for images, plus
    the heritable tensors plugins add (``extra``, :class:`alife.genome.GenomeTensor`)."""
    base = make_layout(replace(brain, hidden=hidden), n_obs=spec.n_in, n_act=spec.n_act)
    rows = [(e.segment, e.name, e.shape) for e in base.entries]
    if spec.image:
        conv, c_in = [], spec.obs_shape[2]
        for i, (c, k, _) in enumerate(CNN_LAYERS):
            conv += [("policy", f"conv{i}.w", (c, c_in, k, k)), ("policy", f"conv{i}.b", (c,))]
            c_in = c
        rows = conv + rows
    return extend_spec(rows, extra)


def init_conv(genomes: torch.Tensor, layout: Layout, init_scale: float, generator: torch.Generator) -> None:
    """Fan-in scaled initial conv kernels (``init_genomes`` only scales 2-D matrices)."""
    for e in layout.entries:
        if e.segment == "policy" and e.name.startswith("conv") and e.name.endswith(".w"):
            fan_in = math.prod(e.shape[1:])
            noise = torch.randn(genomes.shape[0], e.size, generator=generator, device=genomes.device)
            genomes[:, e.offset:e.offset + e.size] = noise * (init_scale / math.sqrt(fan_in))


def features(genomes: torch.Tensor, layout: Layout, spec: PolicySpec, obs: torch.Tensor) -> torch.Tensor:
    """``[B, n_in]`` MLP inputs: flattened vectors, or the CNN trunk applied to ``[B, H, W, C]`` images.

    Row ``b`` of ``obs`` is seen by the network in row ``b`` of ``genomes``; the trunk is one grouped
    convolution per layer over all rows.
    """
    b = obs.shape[0]
    if not spec.image:
        return obs.reshape(b, -1).float()
    x = obs.float().div_(255.0).permute(0, 3, 1, 2)  # [B, C, H, W]
    for i, (c, k, s) in enumerate(CNN_LAYERS):
        w = layout.view(genomes, f"policy.conv{i}.w").reshape(b * c, -1, k, k)
        bias = layout.view(genomes, f"policy.conv{i}.b").reshape(b * c)
        x = x.reshape(1, -1, x.shape[2], x.shape[3])
        x = torch.tanh(F.conv2d(x, w, bias, stride=s, groups=b))
        x = x.reshape(b, c, x.shape[2], x.shape[3])
    return x.reshape(b, -1)


def act(genomes: torch.Tensor, layout: Layout, spec: PolicySpec, obs: torch.Tensor,
        mapping: str = "tanh") -> np.ndarray:
    """One forward pass for every row: ``[B]`` int actions (Discrete) or ``[B, *shape]`` floats (Box)."""
    with torch.no_grad():
        x = features(genomes, layout, spec, obs)
        if spec.discrete:
            y = mlp_forward(genomes, layout, "policy", x, out_act="linear")
            return y.argmax(1).cpu().numpy()
        y = mlp_forward(genomes, layout, "policy", x, out_act="tanh" if mapping == "tanh" else "linear")
        y = y.cpu().numpy()
    if mapping == "tanh":
        a = spec.low + (y + 1.0) * 0.5 * (spec.high - spec.low)
    else:
        a = np.clip(y, spec.low, spec.high)
    return a.astype(np.float32).reshape((obs.shape[0],) + spec.act_shape)
