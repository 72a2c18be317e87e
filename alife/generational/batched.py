"""Classic-control and Taxi dynamics stepped for a whole batch of episodes at once, in numpy.

Gymnasium's CartPole, Acrobot and Pendulum are scalar Python simulators; stepping hundreds of
them one at a time (as ``SyncVectorEnv`` does) costs 15-60 microseconds per environment step, which
measured as the bottleneck of a generation (Acrobot-v1: ~3,000 steps/s for a population of 40).
Here the same equations run as array operations over every running episode; the constants are
read from the gymnasium environment itself, and each episode still starts from
``env.reset(seed=...)`` of a real gymnasium environment, so initial states are gymnasium's own.
``tests/generational/test_batched.py`` checks trajectories against gymnasium step by step.
Taxi (a table of 500 states by 6 actions) steps as table look-ups built from the environment's
own transition table ``P``.

Each class offers ``reset(envs, seeds) -> obs`` and ``step(rows, actions) -> (obs, reward,
terminated)`` over the rows still running; the time limit is applied by the caller.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class _StateBatch:
    """A batch whose state is the gymnasium environment's ``unwrapped.state`` (one row per
    episode): reset each environment with its seed (gymnasium's own start-state draw), take the
    states, and observe them with the subclass's ``_obs``."""

    #: numbers in a state row
    width: int = 0

    def __init__(self, env: Any):
        self.u = env.unwrapped
        self.s = np.zeros((0, self.width))

    def reset(self, envs: list[Any], seeds: np.ndarray) -> np.ndarray:
        for env, seed in zip(envs, seeds, strict=True):
            env.reset(seed=int(seed))
        self.s = np.stack([np.asarray(env.unwrapped.state, dtype=np.float64) for env in envs])
        return self._obs(self.s)

    @staticmethod
    def _obs(s: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class CartPoleBatch(_StateBatch):
    """``CartPole-v1`` (gymnasium ``classic_control/cartpole.py``, Barto, Sutton & Anderson 1983)."""

    width = 4

    @staticmethod
    def _obs(s: np.ndarray) -> np.ndarray:
        return s.astype(np.float32)

    def step(self, rows: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = self.u
        x, x_dot, theta, theta_dot = self.s[rows].T
        force = np.where(np.asarray(actions) == 1, u.force_mag, -u.force_mag)
        costheta, sintheta = np.cos(theta), np.sin(theta)
        temp = (force + u.polemass_length * np.square(theta_dot) * sintheta) / u.total_mass
        thetaacc = (u.gravity * sintheta - costheta * temp) / (
            u.length * (4.0 / 3.0 - u.masspole * np.square(costheta) / u.total_mass))
        xacc = temp - u.polemass_length * thetaacc * costheta / u.total_mass
        if u.kinematics_integrator == "euler":
            x, x_dot = x + u.tau * x_dot, x_dot + u.tau * xacc
            theta, theta_dot = theta + u.tau * theta_dot, theta_dot + u.tau * thetaacc
        else:  # semi-implicit euler
            x_dot = x_dot + u.tau * xacc
            x = x + u.tau * x_dot
            theta_dot = theta_dot + u.tau * thetaacc
            theta = theta + u.tau * theta_dot
        s = np.stack([x, x_dot, theta, theta_dot], 1)
        self.s[rows] = s
        terminated = (x < -u.x_threshold) | (x > u.x_threshold) | (theta < -u.theta_threshold_radians) \
            | (theta > u.theta_threshold_radians)
        # gymnasium pays 1 on every step including the one that ends the episode
        reward = np.full(rows.size, -1.0 if u._sutton_barto_reward else 1.0)
        if u._sutton_barto_reward:
            reward[~terminated] = 0.0
        return s.astype(np.float32), reward, terminated


def _wrap(x: np.ndarray, m: float, big: float) -> np.ndarray:
    """gymnasium's ``wrap``: add or subtract the period until ``x`` lies in ``[m, big]``."""
    diff = big - m
    while (hi := x > big).any():
        x = np.where(hi, x - diff, x)
    while (lo := x < m).any():
        x = np.where(lo, x + diff, x)
    return x


class AcrobotBatch(_StateBatch):
    """``Acrobot-v1`` (gymnasium ``classic_control/acrobot.py``; Sutton 1996, Sutton & Barto 1998),
    the "book" dynamics integrated by one fourth-order Runge-Kutta step of ``dt``."""

    width = 4

    def __init__(self, env: Any):
        super().__init__(env)
        if self.u.torque_noise_max > 0:
            raise ValueError("batched Acrobot has no torque noise; use the gymnasium stepping")

    @staticmethod
    def _obs(s: np.ndarray) -> np.ndarray:
        return np.stack([np.cos(s[:, 0]), np.sin(s[:, 0]), np.cos(s[:, 1]), np.sin(s[:, 1]),
                         s[:, 2], s[:, 3]], 1).astype(np.float32)

    def _dsdt(self, y: np.ndarray) -> np.ndarray:
        u = self.u
        m1, m2, l1 = u.LINK_MASS_1, u.LINK_MASS_2, u.LINK_LENGTH_1
        lc1, lc2, i1, i2, g = u.LINK_COM_POS_1, u.LINK_COM_POS_2, u.LINK_MOI, u.LINK_MOI, 9.8
        a, theta1, theta2, dtheta1, dtheta2 = y[:, 4], y[:, 0], y[:, 1], y[:, 2], y[:, 3]
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * np.cos(theta2)) + i1 + i2
        d2 = m2 * (lc2**2 + l1 * lc2 * np.cos(theta2)) + i2
        phi2 = m2 * lc2 * g * np.cos(theta1 + theta2 - np.pi / 2.0)
        phi1 = (-m2 * l1 * lc2 * dtheta2**2 * np.sin(theta2)
                - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * np.sin(theta2)
                + (m1 * lc1 + m2 * l1) * g * np.cos(theta1 - np.pi / 2) + phi2)
        if u.book_or_nips == "nips":
            ddtheta2 = (a + d2 / d1 * phi1 - phi2) / (m2 * lc2**2 + i2 - d2**2 / d1)
        else:
            ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * np.sin(theta2) - phi2) / (
                m2 * lc2**2 + i2 - d2**2 / d1)
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return np.stack([dtheta1, dtheta2, ddtheta1, ddtheta2, np.zeros_like(a)], 1)

    def step(self, rows: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = self.u
        torque = np.asarray(u.AVAIL_TORQUE, dtype=np.float64)[np.asarray(actions)]
        y0 = np.concatenate([self.s[rows], torque[:, None]], 1)
        dt = u.dt
        dt2 = dt / 2.0
        k1 = self._dsdt(y0)
        k2 = self._dsdt(y0 + dt2 * k1)
        k3 = self._dsdt(y0 + dt2 * k2)
        k4 = self._dsdt(y0 + dt * k3)
        ns = (y0 + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4))[:, :4]
        ns[:, 0] = _wrap(ns[:, 0], -np.pi, np.pi)
        ns[:, 1] = _wrap(ns[:, 1], -np.pi, np.pi)
        ns[:, 2] = np.minimum(np.maximum(ns[:, 2], -u.MAX_VEL_1), u.MAX_VEL_1)
        ns[:, 3] = np.minimum(np.maximum(ns[:, 3], -u.MAX_VEL_2), u.MAX_VEL_2)
        self.s[rows] = ns
        terminated = -np.cos(ns[:, 0]) - np.cos(ns[:, 1] + ns[:, 0]) > 1.0
        return self._obs(ns), np.where(terminated, 0.0, -1.0), terminated


class PendulumBatch(_StateBatch):
    """``Pendulum-v1`` (gymnasium ``classic_control/pendulum.py``): torque-limited swing-up."""

    width = 2

    @staticmethod
    def _obs(s: np.ndarray) -> np.ndarray:
        return np.stack([np.cos(s[:, 0]), np.sin(s[:, 0]), s[:, 1]], 1).astype(np.float32)

    def step(self, rows: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = self.u
        th, thdot = self.s[rows, 0], self.s[rows, 1]
        a = np.clip(np.asarray(actions).reshape(rows.size, -1), -u.max_torque, u.max_torque)[:, 0]
        costs = (((th + np.pi) % (2 * np.pi)) - np.pi) ** 2 + 0.1 * thdot**2 + 0.001 * (a**2)
        newthdot = thdot + (3 * u.g / (2 * u.l) * np.sin(th) + 3.0 / (u.m * u.l**2) * a) * u.dt
        newthdot = np.clip(newthdot, -u.max_speed, u.max_speed)
        newth = th + newthdot * u.dt
        ns = np.stack([newth, newthdot], 1)
        self.s[rows] = ns
        return self._obs(ns), -costs, np.zeros(rows.size, dtype=bool)


class TaxiBatch:
    """``Taxi-v3``/``v4`` (gymnasium ``toy_text/taxi.py``, Dietterich 2000) as look-ups in tables
    built from the environment's transition table ``P``; only the deterministic form (no rainy
    moves, no fickle passenger: every ``P[s][a]`` a single transition), as ``gym.make`` gives it."""

    def __init__(self, env: Any):
        u = env.unwrapped
        if getattr(u, "fickle_passenger", False) or any(len(t) != 1 for row in u.P.values() for t in row.values()):
            raise ValueError("batched Taxi is the deterministic one; use the gymnasium stepping")
        n_s, n_a = int(u.observation_space.n), int(u.action_space.n)
        self.next = np.zeros((n_s, n_a), dtype=np.int64)
        self.reward = np.zeros((n_s, n_a), dtype=np.float64)
        self.done = np.zeros((n_s, n_a), dtype=bool)
        for s, row in u.P.items():
            for a, ((_, ns, r, term),) in row.items():
                self.next[s, a], self.reward[s, a], self.done[s, a] = ns, r, term
        self.s = np.zeros(0, dtype=np.int64)

    def reset(self, envs: list[Any], seeds: np.ndarray) -> np.ndarray:
        self.s = np.array([env.reset(seed=int(seed))[0] for env, seed in zip(envs, seeds, strict=True)],
                          dtype=np.int64)
        return self.s.copy()

    def step(self, rows: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        s, a = self.s[rows], np.asarray(actions, dtype=np.int64)
        ns = self.next[s, a]
        self.s[rows] = ns
        return ns, self.reward[s, a], self.done[s, a]


#: gymnasium entry point -> batched dynamics; matched on the unwrapped class, so a user's
#: re-registration under another id with other constants is still stepped correctly
BATCHED = {("classic_control", "CartPoleEnv"): CartPoleBatch, ("classic_control", "AcrobotEnv"): AcrobotBatch,
           ("classic_control", "PendulumEnv"): PendulumBatch, ("toy_text", "TaxiEnv"): TaxiBatch}


def batched_for(env: Any) -> Any | None:
    """Batched dynamics for ``env`` when its simulator is one of gymnasium's classic-control
    tasks or Taxi (and not subclassed), else ``None``."""
    u = env.unwrapped
    mod = type(u).__module__.split(".")
    cls = BATCHED.get((mod[2] if len(mod) > 2 else "", type(u).__name__))
    if cls is None or mod[:2] != ["gymnasium", "envs"]:
        return None
    try:
        return cls(env)
    except ValueError:
        return None
