"""Classic-control dynamics stepped for a whole batch of episodes at once, in numpy.

Gymnasium's CartPole, Acrobot and Pendulum are scalar Python simulators; stepping hundreds of
them one at a time (as ``SyncVectorEnv`` does) costs 15-60 microseconds per environment step, which
measured as the bottleneck of a generation (Acrobot-v1: ~3,000 steps/s for a population of 40).
Here the same equations run as array operations over every running episode; the constants are
read from the gymnasium environment itself, and each episode still starts from
``env.reset(seed=...)`` of a real gymnasium environment, so initial states are gymnasium's own.
``tests/generational/test_batched.py`` checks trajectories against gymnasium step by step.

Each class offers ``reset(envs, seeds) -> obs`` and ``step(rows, actions) -> (obs, reward,
terminated)`` over the rows still running; the time limit is applied by the caller.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class CartPoleBatch:
    """``CartPole-v1`` (gymnasium ``classic_control/cartpole.py``, Barto, Sutton & Anderson 1983)."""

    def __init__(self, env: Any):
        u = env.unwrapped
        self.u = u
        self.s = np.zeros((0, 4))

    def reset(self, envs: list[Any], seeds: np.ndarray) -> np.ndarray:
        for env, seed in zip(envs, seeds, strict=True):
            env.reset(seed=int(seed))
        self.s = np.stack([np.asarray(env.unwrapped.state, dtype=np.float64) for env in envs])
        return self.s.astype(np.float32)

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


class AcrobotBatch:
    """``Acrobot-v1`` (gymnasium ``classic_control/acrobot.py``; Sutton 1996, Sutton & Barto 1998),
    the "book" dynamics integrated by one fourth-order Runge-Kutta step of ``dt``."""

    def __init__(self, env: Any):
        self.u = env.unwrapped
        if self.u.torque_noise_max > 0:
            raise ValueError("batched Acrobot has no torque noise; use the gymnasium stepping")
        self.s = np.zeros((0, 4))

    def reset(self, envs: list[Any], seeds: np.ndarray) -> np.ndarray:
        for env, seed in zip(envs, seeds, strict=True):
            env.reset(seed=int(seed))
        self.s = np.stack([np.asarray(env.unwrapped.state, dtype=np.float64) for env in envs])
        return self._obs(self.s)

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


class PendulumBatch:
    """``Pendulum-v1`` (gymnasium ``classic_control/pendulum.py``): torque-limited swing-up."""

    def __init__(self, env: Any):
        self.u = env.unwrapped
        self.s = np.zeros((0, 2))

    def reset(self, envs: list[Any], seeds: np.ndarray) -> np.ndarray:
        for env, seed in zip(envs, seeds, strict=True):
            env.reset(seed=int(seed))
        self.s = np.stack([np.asarray(env.unwrapped.state, dtype=np.float64) for env in envs])
        return self._obs(self.s)

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


#: gymnasium entry point -> batched dynamics; matched on the unwrapped class, so a user's
#: re-registration under another id with other constants is still stepped correctly
BATCHED = {"CartPoleEnv": CartPoleBatch, "AcrobotEnv": AcrobotBatch, "PendulumEnv": PendulumBatch}


def batched_for(env: Any) -> Any | None:
    """Batched dynamics for ``env`` when its simulator is one of gymnasium's classic-control
    tasks (and not subclassed), else ``None``."""
    u = env.unwrapped
    cls = BATCHED.get(type(u).__name__)
    if cls is None or type(u).__module__.split(".")[:3] != ["gymnasium", "envs", "classic_control"]:
        return None
    try:
        return cls(env)
    except ValueError:
        return None
