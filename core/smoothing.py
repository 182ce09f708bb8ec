"""Temporal smoothing of one tracked face's landmarks: interchangeable filters behind one protocol.

Raw per-frame landmarks jitter by about a percent of the face size even on a still face, which is very
visible in an overlay. A filter must remove that jitter without making the overlay trail behind a moving
head. The tracker owns one smoother per track, feeds it every frame and calls :meth:`Smoother.reset`
when the face is re-detected (a new track, or a jump the filter must not blend across).

* :class:`KalmanSmoother` (default): constant-velocity Kalman filter with confidence-scaled measurement
  noise and motion-adaptive covariance, so it smooths hard when the face is still and follows at once
  when it moves.
* :class:`OneEuroSmoother`: the One-Euro filter (Casiez et al., CHI 2012), speed-adaptive low-pass.
* :class:`NoSmoother`: pass-through, for measuring the raw output.

All filters express their tuning relative to the face size (the longer side of the landmark box), so
the same settings work for a face near the camera and one far away.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar, Protocol, Union, runtime_checkable

import numpy as np

from core.geometry import landmark_box
from core.registry import Choice, Registry

log = logging.getLogger(__name__)

#: Shortest time step used when timestamps repeat or go backwards (seconds).
MIN_DT = 1e-3
#: Confidence floor: below it the measurement noise stops growing, so a near-zero score cannot freeze
#: the filter forever.
MIN_CONFIDENCE = 0.05
#: Largest factor by which per-point measurement noise (``KalmanConfig.point_noise``) may scale one
#: point's standard deviation up or down from the face's, so one odd anchor spread cannot freeze or
#: unfilter a point.
POINT_NOISE_CLIP = 4.0


@runtime_checkable
class Smoother(Protocol):
    """One face's temporal filter: ``update`` takes ``[L, 2]`` landmarks, the face confidence in (0, 1],
    the frame time in seconds and optionally each point's uncertainty ``[L]`` (pixels; filters that
    cannot use it ignore it), and returns the smoothed ``[L, 2]``; ``reset`` forgets the past."""

    def update(self, landmarks: np.ndarray, confidence: float, t: float,
               uncertainty: np.ndarray | None = None) -> np.ndarray: ...

    def reset(self) -> None: ...


class NoSmoother:
    """Pass-through (the raw model output)."""

    def update(self, landmarks: np.ndarray, confidence: float, t: float,
               uncertainty: np.ndarray | None = None) -> np.ndarray:
        return np.array(landmarks, dtype=np.float64)

    def reset(self) -> None:
        pass


class KalmanSmoother:
    """Constant-velocity Kalman filter over every landmark coordinate.

    State per coordinate: position and velocity, ``2L`` independent 2-state filters sharing one motion
    model, run at once as numpy arrays: state ``[2, 2L]``, covariance ``[2, 2, 2L]`` (each coordinate
    its own, since each point may have its own measurement noise).

    * Measurement noise ``R``: ``(measurement_noise · size / confidence)²`` — a less confident face
      is trusted less. With ``point_noise`` α > 0 and a per-point uncertainty (the anchors' spread,
      ``core.decode``), each point's standard deviation is further scaled by ``(u / median u)^α``
      (clipped to ×/÷ :data:`POINT_NOISE_CLIP`): ambiguous points are smoothed more, sharp ones follow
      at once, and the face's typical point keeps the per-face noise.
    * Process noise ``Q``: white acceleration of standard deviation ``process_noise · size`` per s², with
      the real time step from the timestamps (variable frame rates are fine).
    * Motion adaptation: a small ``Q`` is what makes a still face steady, but it would make the filter
      trail a head that starts to move. Two tests on the innovation (measurement minus prediction, an
      ``[L, 2]`` field) tell real motion from noise, both self-calibrating (they compare the innovation
      with itself, so they work whether or not ``measurement_noise`` matches the model's real noise):

      - *coherence*: a least-squares affine fit to the field (what a translating, rotating in plane or
        zooming face produces) against the residual, as an F ratio (about 1 for pure noise). Above
        ``motion_threshold`` the prior covariance is inflated by ``ratio / motion_threshold``;
      - *persistence*: the correlation between this frame's and the previous frame's innovation
        (slightly negative for noise, ±0.09 for 136 coordinates; near 1 when the filter trails a motion,
        including out-of-plane turns that are not affine in the image). Above
        ``correlation_threshold`` the covariance is inflated so the position gain is at least
        ``motion_gain``.

      The estimate then catches up within a frame or two, and the gain decays back by itself once the
      innovation is noise again.

      Both tests look at the innovation's shape, not its size, and a landmark model's own noise is
      itself coherent (the whole shape shivers together as the tracking crop moves). So neither test
      runs while the innovation's RMS stays below ``noise_gate`` × the expected measurement standard
      deviation ``√R``: such a small change is smoothed as noise, whatever its shape. A real movement
      exceeds it within a frame, and the lag this can leave is smaller than √R itself.

    * Start: the first measurement is the position, as uncertain as one measurement (``R``), and the
      velocity starts with the variance the filter settles to (:func:`steady_state_covariance`), so a
      new face is steady within its first frames instead of after the ~3 s a wide prior takes.

    The names above are the fields of :class:`KalmanConfig`.
    """

    def __init__(self, config: KalmanConfig | None = None) -> None:
        self.config = config or KalmanConfig()
        self._x = np.zeros((2, 0))  # [position, velocity] × coordinate
        self._p = np.zeros((2, 2, 0))  # covariance per coordinate
        self._started = False
        self._velocity_set = False
        self._t = 0.0
        self._shape: tuple[int, ...] = ()
        self._last_innovation: np.ndarray | None = None

    def reset(self) -> None:
        self._started = False
        self._last_innovation = None

    def update(self, landmarks: np.ndarray, confidence: float, t: float,
               uncertainty: np.ndarray | None = None) -> np.ndarray:
        pts = _as_points(landmarks)
        z = pts.ravel()
        size = max(landmark_box(pts).size, 1e-6)
        r = (self.config.measurement_noise * size / max(float(confidence), MIN_CONFIDENCE)) ** 2
        r = r * np.repeat(self._point_noise_ratio(uncertainty, len(pts)) ** 2, 2)
        if not self._started:
            self._start(z, r, t, pts.shape)
            return pts
        if pts.shape != self._shape:
            raise ValueError(f"landmarks changed shape from {self._shape} to {pts.shape} without reset()")
        dt = _time_step(t, self._t)
        self._t = t
        accel_std = self.config.process_noise * size
        if not self._velocity_set:
            # The velocity the filter will know once settled, not a wide "unknown" prior: a wide one makes
            # the filter fit a line through a growing window (the gain falls like 4/k, about 3 s to settle
            # at 30 fps); a settled one averages positions from the start (gain ~1/k). A face that is
            # moving when found is caught by the motion adaptation, as any start of motion is.
            self._p[1, 1] = steady_state_covariance(dt, accel_std, np.sqrt(r))[1, 1]
            self._velocity_set = True
        f = np.array([[1.0, dt], [0.0, 1.0]])
        q = white_noise_acceleration(dt, accel_std ** 2)
        self._x = f @ self._x
        self._p = np.einsum("ij,jkn,lk->iln", f, self._p, f) + q[:, :, None]
        self._adapt_to_motion(z - self._x[0], self._x[0].reshape(pts.shape), r)
        gain = self._p[:, 0] / (self._p[0, 0] + r)  # [2, n]: H = [1, 0] for every coordinate
        self._x = self._x + gain * (z - self._x[0])
        self._p = self._p - gain[:, None] * self._p[0][None]
        return self._x[0].reshape(pts.shape).copy()

    def _point_noise_ratio(self, uncertainty: np.ndarray | None, points: int) -> np.ndarray:
        """Each point's measurement standard deviation relative to the face's: ``(u / median u)^α``
        (α = ``point_noise``), clipped to ``[1/POINT_NOISE_CLIP, POINT_NOISE_CLIP]``; all ones when
        α = 0 or there is no uncertainty."""
        if not self.config.point_noise or uncertainty is None:
            return np.ones(points)
        u = np.asarray(uncertainty, dtype=np.float64)
        if u.shape != (points,) or not np.isfinite(u).all():
            raise ValueError(f"uncertainty must be [{points}] finite values, got {u.shape}")
        ratio = (np.maximum(u, 1e-9) / max(float(np.median(u)), 1e-9)) ** self.config.point_noise
        return np.clip(ratio, 1.0 / POINT_NOISE_CLIP, POINT_NOISE_CLIP)

    def _adapt_to_motion(self, innovation: np.ndarray, predicted: np.ndarray, r: np.ndarray) -> None:
        """Inflate the prior covariance when the innovation looks like motion (see the class docstring).

        The tests read the innovation in units of each coordinate's measurement deviation ``√R`` (a
        weighted fit), so points known to be doubtful cannot pass their noise off as motion; with one
        noise per face this is the plain innovation, scaled."""
        innovation = innovation / np.sqrt(r)
        if np.sqrt(np.mean(innovation ** 2)) < self.config.noise_gate:
            self._last_innovation = innovation
            return
        factor = np.ones_like(r)
        weights = 1.0 / np.sqrt(r.reshape(predicted.shape)[:, 0])
        coherence = _coherent_motion_ratio(innovation.reshape(predicted.shape), predicted, weights)
        if coherence > self.config.motion_threshold:
            factor[:] = coherence / self.config.motion_threshold
        previous, self._last_innovation = self._last_innovation, innovation
        if previous is not None and _correlation(innovation, previous) > self.config.correlation_threshold:
            wanted = r * self.config.motion_gain / (1.0 - self.config.motion_gain)  # P00 giving gain P00 / (P00 + R)
            factor = np.maximum(factor, wanted / self._p[0, 0])
        self._p = self._p * np.maximum(factor, 1.0)

    def _start(self, z: np.ndarray, r: np.ndarray, t: float, shape: tuple[int, ...]) -> None:
        """Start from one measurement: the position is as uncertain as that measurement (``R``); the
        velocity's variance is set on the next frame (:meth:`update`), when the time step it depends on
        is known."""
        self._x = np.vstack([z, np.zeros_like(z)])
        self._p = np.zeros((2, 2, len(z)))
        self._p[0, 0] = r
        self._started, self._velocity_set, self._t, self._shape = True, False, t, shape


def white_noise_acceleration(dt: float, var: float) -> np.ndarray:
    """Process noise of a constant-velocity model driven by white acceleration of variance ``var``:
    filterpy's ``Q_discrete_white_noise(dim=2, dt, var)`` (tests/core/test_startup.py checks they agree),
    written out because importing ``filterpy.common`` imports scipy (about 1.4 s of start-up)."""
    return np.array([[.25 * dt ** 4, .5 * dt ** 3], [.5 * dt ** 3, dt ** 2]]) * var


def steady_state_covariance(dt: float, accel_std: float, noise_std: np.ndarray) -> np.ndarray:
    """Posterior covariance ``[2, 2, n]`` that a constant-velocity filter with white acceleration of
    standard deviation ``accel_std`` and measurement noise ``noise_std [n]``, updated every ``dt``,
    settles to: the closed form of the alpha-beta filter (Kalata's tracking index
    λ = accel_std · dt² / noise_std; Bar-Shalom, Li & Kirubarajan 2001, §6.5.3), so the filter can start
    settled instead of iterating the Riccati equation."""
    sigma = np.asarray(noise_std, dtype=np.float64)
    lam = accel_std * dt ** 2 / sigma
    root = np.sqrt(lam ** 2 + 8 * lam)
    alpha = -(lam ** 2 + 8 * lam - (lam + 4) * root) / 8
    beta = (lam ** 2 + 4 * lam - lam * root) / 4
    var = sigma ** 2
    cross = beta / dt * var
    return np.array([[alpha * var, cross], [cross, beta * (alpha - beta / 2) / (1 - alpha) / dt ** 2 * var]])


def _coherent_motion_ratio(innovation: np.ndarray, points: np.ndarray, weights: np.ndarray | None = None) -> float:
    """F statistic of an affine fit to the innovation field ``[L, 2]`` at ``points`` (≈1 for pure noise);
    with ``weights [L]`` a weighted fit of the field already multiplied by them (a whitened field)."""
    design = np.hstack([points - points.mean(axis=0), np.ones((len(points), 1))])
    if weights is not None:
        design = design * weights[:, None]
    coef, *_ = np.linalg.lstsq(design, innovation, rcond=None)
    fitted = design @ coef
    dof_fit = coef.size
    dof_residual = innovation.size - dof_fit
    if dof_residual <= 0:
        return 0.0
    residual = ((innovation - fitted) ** 2).sum() / dof_residual
    return float((fitted ** 2).sum() / dof_fit / max(residual, 1e-12))


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two innovation vectors (0 for a zero vector)."""
    norm = float(np.sqrt((a @ a) * (b @ b)))
    return float(a @ b) / norm if norm > 0 else 0.0


class OneEuroSmoother:
    """The One-Euro filter, vectorised over all coordinates.

    A first-order low-pass whose cutoff rises with speed: ``cutoff = min_cutoff + beta · |speed|``
    (Hz; speed in face sizes per second, so ``beta`` is scale-free), with the speed itself low-passed
    at ``d_cutoff`` Hz. It ignores the confidence.
    """

    def __init__(self, config: OneEuroConfig | None = None) -> None:
        self.config = config or OneEuroConfig()
        self._x: np.ndarray | None = None
        self._dx = np.zeros(0)
        self._t = 0.0

    def reset(self) -> None:
        self._x = None

    def update(self, landmarks: np.ndarray, confidence: float, t: float,
               uncertainty: np.ndarray | None = None) -> np.ndarray:
        pts = _as_points(landmarks)
        if self._x is None:
            self._x, self._dx, self._t = pts, np.zeros_like(pts), t
            return pts.copy()
        if pts.shape != self._x.shape:
            raise ValueError(f"landmarks changed shape from {self._x.shape} to {pts.shape} without reset()")
        dt = _time_step(t, self._t)
        self._t = t
        size = max(landmark_box(pts).size, 1e-6)
        speed = (pts - self._x) / dt / size
        self._dx = self._dx + _smoothing_factor(self.config.d_cutoff, dt) * (speed - self._dx)
        cutoff = self.config.min_cutoff + self.config.beta * np.abs(self._dx)
        self._x = self._x + _smoothing_factor(cutoff, dt) * (pts - self._x)
        return self._x.copy()


def _smoothing_factor(cutoff: float | np.ndarray, dt: float) -> float | np.ndarray:
    """Exponential-smoothing weight of a first-order low-pass at ``cutoff`` Hz for step ``dt``."""
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def _time_step(t: float, previous: float) -> float:
    dt = float(t) - previous
    if dt < MIN_DT:
        log.debug("timestamp step %.6f s is not positive; using %.3f s", dt, MIN_DT)
        return MIN_DT
    return dt


def _as_points(landmarks: np.ndarray) -> np.ndarray:
    pts = np.array(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 4:
        raise ValueError(f"expected landmarks [L, 2] with L >= 4, got {pts.shape}")
    return pts


@dataclass(frozen=True)
class KalmanConfig:
    """Tuning of :class:`KalmanSmoother` (see its docstring); checked when built, so a bad value or a
    misspelt name fails where the configuration is written, not later in a processing thread."""

    name: ClassVar[str] = "kalman"
    measurement_noise: float = 0.005
    process_noise: float = 0.005
    motion_threshold: float = 3.0
    correlation_threshold: float = 0.3
    motion_gain: float = 0.8
    noise_gate: float = 1.0
    #: Exponent α of the per-point measurement noise from the anchors' spread (0: one noise per face).
    #: Off by default: with α = 1 the still face settled 11 % less (steady equal, same lag) and the real
    #: clips were 0.4 % and 14 % smoother (benchmarks/RESULTS.md, "Stability" with ``--point-noise``), not
    #: the clear win a default needs; it pays off where a point turns doubtful (an occluding hand).
    point_noise: float = 0.0

    def __post_init__(self) -> None:
        if min(self.measurement_noise, self.process_noise, self.motion_threshold) <= 0:
            raise ValueError("measurement_noise, process_noise and motion_threshold must be positive, got "
                             f"{self.measurement_noise}, {self.process_noise}, {self.motion_threshold}")
        if not 0 < self.correlation_threshold < 1 or not 0 < self.motion_gain < 1:
            raise ValueError(f"correlation_threshold and motion_gain must lie in (0, 1), got "
                             f"{self.correlation_threshold}, {self.motion_gain}")
        if self.noise_gate < 0:
            raise ValueError(f"noise_gate must not be negative, got {self.noise_gate}")
        if not 0 <= self.point_noise <= 2:
            raise ValueError(f"point_noise must lie in [0, 2], got {self.point_noise}")

    def build(self) -> KalmanSmoother:
        return KalmanSmoother(self)


@dataclass(frozen=True)
class OneEuroConfig:
    """Tuning of :class:`OneEuroSmoother`: cutoffs in Hz, ``beta`` per face size per second."""

    name: ClassVar[str] = "one-euro"
    min_cutoff: float = 1.0
    beta: float = 20.0
    d_cutoff: float = 1.0

    def __post_init__(self) -> None:
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.beta < 0:
            raise ValueError(f"need min_cutoff > 0, d_cutoff > 0, beta >= 0; got {self.min_cutoff}, "
                             f"{self.d_cutoff}, {self.beta}")

    def build(self) -> OneEuroSmoother:
        return OneEuroSmoother(self)


@dataclass(frozen=True)
class NoSmoothingConfig:
    """The pass-through has nothing to tune."""

    name: ClassVar[str] = "none"

    def build(self) -> NoSmoother:
        return NoSmoother()


SmootherConfig = Union[KalmanConfig, OneEuroConfig, NoSmoothingConfig]

#: The smoothing methods (``PipelineConfig.smoothing``, ``--smoothing``, Settings → Processing): name, label
#: and configuration class (its defaults are the method's defaults; ``build()`` makes the smoother). A new
#: method is one entry here; one with parameters also gets a ``PipelineConfig`` field of its configuration
#: class and settings rows for them (``core.config``).
SMOOTHERS: Registry[type[SmootherConfig]] = Registry("smoother", [
    Choice(KalmanConfig.name, "Kalman (adaptive)", KalmanConfig),
    Choice(OneEuroConfig.name, "One-Euro", OneEuroConfig),
    Choice(NoSmoothingConfig.name, "None (raw model output)", NoSmoothingConfig),
])


def default_config(name: str) -> SmootherConfig:
    """The default configuration of the smoother called ``name`` (ValueError for an unknown name)."""
    return SMOOTHERS[name].make()
