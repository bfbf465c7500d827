"""Linear-probe protocol of Mormont et al. 2020 (§IV-F): linear SVM, C by grouped 5-fold CV, refit, test score.

Both methods fit the same objective, liblinear's L2-regularised squared hinge with a regularised intercept
(``min_w 0.5‖w‖² + C Σ max(0, 1 − y_i w·[x_i, 1])²``), one-vs-rest for multi-class:

* ``svm``: the reference, scikit-learn ``LinearSVC`` over the C grid, one fit per C × fold, then a refit;
* ``fast``: every C × fold (and refit) × class problem in one batched truncated-Newton solve in torch.

Selection rule. Folds are grouped and class-stratified, and only folds that can be scored count: fewer folds are
used when the groups are few, so that every validation fold holds two classes (ROC AUC) and every training part
all classes. C maximises the mean CV score; CV scores within 1e-12 of the best are a tie, resolved towards the
**largest** C. The paper selects C by grouped CV without a tie rule; scikit-learn's ``GridSearchCV`` would keep
the first best in grid order, i.e. the smallest C of an ascending grid. On separable features every C ties at a CV
score of 1.0, and the smallest C (1e-10) is a model whose decision values differ by ~1e-7: its test ranking is
numerical noise. The largest tied C fits the data at least as well and is never degenerate that way. When no fold
can be scored at all, C = 1 (LinearSVC's default) is used and the result says so (``fallback``).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from dpbench.errors import DpbenchError, Unscorable
from dpbench.evaluation.folds import Folds, grouped_folds
from dpbench.evaluation.metrics import score as metric_score

C_GRID: tuple[float, ...] = tuple(10.0**e for e in range(-10, 1))
Metric = Literal["roc_auc", "accuracy"]
_TIE = 1e-12  # CV scores this close count as a tie, resolved towards the larger C
FALLBACK_C = 1.0  # LinearSVC's default, used (and recorded) when no CV fold can be scored
_MEMORY_BUDGET = 2 * 2**30  # bytes of (samples × problems) work arrays per batched solve; more problems → chunks
# Per device type: the dtype of the Hessian products inside CG (gradients, line search and weights stay float64),
# and how often (in CG iterations) the host looks at convergence; CUDA kernels queue without waiting in between.
_HVP_DTYPE: dict[str, torch.dtype] = {"cuda": torch.float32}
_CHECK_EVERY: dict[str, int] = {"cuda": 8}


@dataclass(frozen=True)
class ProbeResult:
    """Selected C, its cross-validation evidence and the refit model's test predictions."""

    best_c: float
    cv_scores: dict[float, float]  # mean CV score per C over the scorable folds (NaN when none could be scored)
    test_score: float  # the metric of ``test_decision``, exactly
    test_decision: np.ndarray  # (n_test, n_classes) decision values; binary (−d, d); absent classes: float min
    test_pred: np.ndarray  # (n_test,) predicted class index (first maximum, like LinearSVC.predict)
    seconds: float
    not_converged: int = 0  # svm: fits that raised ConvergenceWarning; fast: problems that hit the iteration cap
    folds: int = 0  # CV folds used
    unscorable_folds: int = 0  # folds that could not be scored (left out of the mean)
    fallback: str | None = None  # why the default C was used, when no fold could be scored


def _check(train_x: np.ndarray, train_y: np.ndarray, train_groups: np.ndarray, test_x: np.ndarray,
           test_y: np.ndarray, n_classes: int, metric: str, method: str, cs: Sequence[float], folds: int) -> None:
    if method not in ("svm", "fast"):
        raise DpbenchError(f"unknown probe method {method!r}; use 'svm' or 'fast'")
    if metric not in ("roc_auc", "accuracy"):
        raise DpbenchError(f"unknown metric {metric!r}; use 'roc_auc' or 'accuracy'")
    if metric == "roc_auc" and n_classes != 2:
        raise DpbenchError(f"roc_auc is the metric of binary tasks, this task has {n_classes} classes; use accuracy")
    if folds < 2:
        raise DpbenchError(f"cross-validation needs at least 2 folds, got {folds}")
    if not cs or any(not (math.isfinite(c) and c > 0) for c in cs):
        raise DpbenchError(f"the C grid must be non-empty positive numbers, got {list(cs)}")
    if train_x.ndim != 2 or test_x.ndim != 2 or train_x.shape[1] != test_x.shape[1]:
        raise DpbenchError(f"features must be 2-D with the same width, got train {train_x.shape}, test {test_x.shape}")
    if not (len(train_y) == len(train_groups) == len(train_x)) or len(test_y) != len(test_x):
        raise DpbenchError("features, labels and groups must have one row per sample; re-extract the features")
    for name, x in (("train", train_x), ("test", test_x)):
        if not np.isfinite(x).all():
            raise DpbenchError(f"{name} features contain NaN or infinite values; check the encoder's output "
                               "(e.g. fp32 instead of bf16) and re-extract")
    for name, y in (("train", train_y), ("test", test_y)):
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            raise DpbenchError(f"{name} labels must be class indices in [0, {n_classes}); check the task's labels")
    present = np.unique(train_y)
    if len(present) < 2:
        raise Unscorable(f"task has a single class in its training split: {present.tolist()}; "
                           "a linear probe needs at least two classes")
    if metric == "roc_auc" and len(np.unique(test_y)) < 2:
        raise Unscorable("ROC AUC is undefined: the test split holds a single class; check the task's splits")


def _full_decision(raw: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Decision values as ``(n, n_classes)``; a binary model's d gives (−d, d); absent classes get −inf."""
    out = np.full((raw.shape[0], n_classes), -np.inf)
    if raw.ndim == 1:
        out[:, classes[0]], out[:, classes[1]] = -raw, raw
    else:
        out[:, classes] = raw
    return out


def _score(decision: np.ndarray, y: np.ndarray, metric: Metric) -> float:
    """The task metric of decision values (dpbench.evaluation.metrics.score); NaN when it is undefined."""
    if metric == "roc_auc" and len(np.unique(y)) < 2:
        return math.nan
    return metric_score(metric, y, decision)


def select_c(cv: dict[float, float]) -> tuple[float, str | None]:
    """(C, fallback): the best mean CV score, ties (within 1e-12) resolved towards the largest C; when no C has a
    score, :data:`FALLBACK_C` (or the grid value nearest to it) with the reason."""
    finite = {c: s for c, s in cv.items() if not math.isnan(s)}
    if not finite:
        c = min(cv, key=lambda v: (abs(math.log10(v) - math.log10(FALLBACK_C)), -v))
        return c, f"no cross-validation fold could be scored; C = {c:g} (LinearSVC's default) was used unselected"
    best = max(finite.values())
    return max(c for c, s in finite.items() if s >= best - _TIE), None


def _mean(scores: list[float]) -> float:
    valid = [s for s in scores if not math.isnan(s)]
    return float(np.mean(valid)) if valid else math.nan


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, train_groups: np.ndarray, test_x: np.ndarray,
                 test_y: np.ndarray, n_classes: int, metric: Metric, method: Literal["svm", "fast"] = "svm",
                 cs: Sequence[float] = C_GRID, folds: int = 5, device: str = "cpu", seed: int = 0) -> ProbeResult:
    """Choose C by grouped ``folds``-fold CV on the training split (metric = the test metric), refit, score test.

    ``seed`` draws the assignment of groups to CV folds (and is LinearSVC's random_state); ``method="svm"`` is
    the LinearSVC reference, ``"fast"`` the batched torch solver on ``device``. Features are used as given.
    """
    train_y, test_y = np.asarray(train_y).astype(np.int64), np.asarray(test_y).astype(np.int64)
    _check(train_x, train_y, train_groups, test_x, test_y, n_classes, metric, method, cs, folds)
    start = time.perf_counter()
    splits, unscorable = grouped_folds(np.asarray(train_groups), train_y, folds, seed, metric)
    grid = sorted(float(c) for c in cs)
    if method == "svm":
        cv, decide, bad = _svm(train_x, train_y, test_x, splits, grid, n_classes, metric, seed)
    else:
        cv, decide, bad = _fast(train_x, train_y, test_x, splits, grid, n_classes, metric, device)
    best_c, fallback = select_c(cv)
    decision = np.nan_to_num(decide(best_c), neginf=np.finfo(np.float64).min)  # JSON-safe, order kept
    return ProbeResult(best_c=best_c, cv_scores=cv, test_score=_score(decision, test_y, metric),
                       test_decision=decision, test_pred=decision.argmax(axis=1),
                       seconds=time.perf_counter() - start, not_converged=bad, folds=len(splits),
                       unscorable_folds=unscorable, fallback=fallback)


#: (mean CV score per C, the refit's test decision values for a chosen C, fits that did not converge)
Solved = tuple[dict[float, float], Callable[[float], np.ndarray], int]


def _svm(x: np.ndarray, y: np.ndarray, test_x: np.ndarray, splits: Folds, grid: list[float], n_classes: int,
         metric: Metric, seed: int) -> Solved:
    x, test_x = np.asarray(x, dtype=np.float64), np.asarray(test_x, dtype=np.float64)
    bad = 0

    def fit(c: float, rows: np.ndarray) -> LinearSVC:
        nonlocal bad
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model = LinearSVC(C=c, dual="auto", max_iter=10000, random_state=seed).fit(x[rows], y[rows])
        bad += sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        for w in caught:
            if not issubclass(w.category, ConvergenceWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return model

    cv: dict[float, float] = {}
    for c in grid:
        scores = []
        for tr, va in splits:
            if len(np.unique(y[tr])) < 2:
                scores.append(math.nan)
                continue
            model = fit(c, tr)
            scores.append(_score(_full_decision(model.decision_function(x[va]), model.classes_, n_classes), y[va],
                                 metric))
        cv[c] = _mean(scores)

    def decide(c: float) -> np.ndarray:
        model = fit(c, np.arange(len(y)))
        return _full_decision(model.decision_function(test_x), model.classes_, n_classes)

    return cv, decide, bad


def _fast(x: np.ndarray, y: np.ndarray, test_x: np.ndarray, splits: Folds, grid: list[float], n_classes: int,
          metric: Metric, device: str) -> Solved:
    n, n_folds, n_c = len(y), len(splits), len(grid)
    k = 1 if n_classes == 2 else n_classes
    masks = np.zeros((n, n_folds + 1))
    for f, (tr, _) in enumerate(splits):
        masks[tr, f] = 1.0
    masks[:, -1] = 1.0  # the refit on the whole training split, solved for every C in the same batch
    with torch.no_grad():
        z, v, a, bad = _fit(x, y, masks, grid, n_classes, device)
        dec = (z @ a).reshape(n, n_folds + 1, n_c, k).cpu().numpy()
        refit = (v @ a.reshape(-1, n_folds + 1, n_c, k)[:, -1].reshape(v.shape[1], -1)).reshape(-1, n_c, k)
        test_dec = torch.einsum("md,dck->mck", _with_ones(test_x, z.device), refit).cpu().numpy()

    def decision(raw: np.ndarray, classes: np.ndarray) -> np.ndarray:
        if k == 1:
            return _full_decision(raw[:, 0], np.array([0, 1]), 2)
        return _full_decision(raw[:, classes], classes, n_classes)

    cv: dict[float, float] = {}
    for ci, c in enumerate(grid):
        scores = []
        for f, (tr, va) in enumerate(splits):
            present = np.unique(y[tr])
            scores.append(math.nan if len(present) < 2 else _score(decision(dec[va, f, ci], present), y[va], metric))
        cv[c] = _mean(scores)
    return cv, lambda c: decision(test_dec[:, grid.index(c)], np.unique(y)), bad


def fast_svm_weights(x: np.ndarray, y: np.ndarray, n_classes: int, c: float,
                     device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """The fast solver's model on all of (x, y) for one C, laid out like LinearSVC's ``coef_`` (K, D), ``intercept_``.

    K = 1 for binary tasks (positive class 1), else one-vs-rest per class.
    """
    with torch.no_grad():
        _, v, a, _ = _fit(x, np.asarray(y), np.ones((len(y), 1)), [c], n_classes, device)
        w = (v @ a).cpu().numpy()
    return w[:-1].T.copy(), w[-1].copy()


def _with_ones(x: np.ndarray, dev: torch.device) -> torch.Tensor:
    """``[x, 1]`` in float64 on ``dev`` (copied over in its own dtype, converted there)."""
    t = torch.as_tensor(np.asarray(x)).to(dev)
    out = torch.ones(t.shape[0], t.shape[1] + 1, dtype=torch.float64, device=dev)
    out[:, :-1] = t
    return out


def _fit(x: np.ndarray, y: np.ndarray, masks: np.ndarray, grid: list[float], n_classes: int,
         device: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """Solve every (training mask, C, class) problem; returns z, the basis v, a (r, masks × C × classes), #capped."""
    from dpbench.encoders.base import resolve_device  # here: the probe alone needs no torchvision

    dev = resolve_device(device)
    (n, m), k = masks.shape, (1 if n_classes == 2 else n_classes)
    z, v = _basis(_with_ones(x, dev))
    signs = np.where(y[:, None] == (np.array([1]) if k == 1 else np.arange(k)), 1.0, -1.0)
    ys = (torch.as_tensor(masks, device=dev)[:, :, None, None] * torch.as_tensor(signs, device=dev)[:, None, None, :]
          ).expand(n, m, len(grid), k).reshape(n, -1)
    cvec = torch.tensor(grid, dtype=z.dtype, device=dev).repeat_interleave(k).repeat(m)
    hvp = _HVP_DTYPE.get(dev.type)
    step = max(1, _MEMORY_BUDGET // (n * z.element_size() * 12))  # ~12 (n, problems) buffers live at once
    parts = [_solve(z, ys[:, i:i + step], cvec[i:i + step], hvp_dtype=hvp) for i in range(0, ys.shape[1], step)]
    return z, v, torch.cat([p[0] for p in parts], dim=1), sum(p[1] for p in parts)


def _basis(xt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate ``[x, 1]`` onto the eigenbasis of its row space: ``z = [x, 1] V`` (n, r), ``w = V a``.

    An orthonormal change of variables leaves the objective unchanged; in this basis the diagonal of the Hessian
    is a good preconditioner. With fewer samples than features, r = n (the dual's size).
    """
    n, d = xt.shape
    if n >= d:
        z0, q = xt, None
    else:
        q, r = torch.linalg.qr(xt.T)  # orthonormal basis of the row space, (d, n)
        z0 = r.T
    _, e = torch.linalg.eigh(z0.T @ z0)
    return z0 @ e, (e if q is None else q @ e)


def _solve(z: torch.Tensor, ys: torch.Tensor, c: torch.Tensor, tol: float = 1e-8, max_newton: int = 100,
           max_cg: int = 2000, hvp_dtype: torch.dtype | None = None) -> tuple[torch.Tensor, int]:
    """Batched primal truncated Newton for ``min_a 0.5‖a‖² + c_p Σ_i max(0, 1 − ys_ip z_i·a)²`` per column p.

    ``ys`` holds ±1 labels, 0 for rows outside problem p's training set. Stops a problem when its gradient norm
    falls to ``tol`` × its norm at a = 0; returns ``a`` (r, P) and the number of problems that hit the cap.
    """
    (n, r), p = z.shape, ys.shape[1]
    zh = z if hvp_dtype is None else z.to(hvp_dtype)
    a = torch.zeros(r, p, dtype=z.dtype, device=z.device)
    za = torch.zeros(n, p, dtype=z.dtype, device=z.device)
    live = torch.arange(p, device=z.device)
    g0 = torch.zeros(p, dtype=z.dtype, device=z.device)
    for it in range(max_newton):
        y_l, za_l, c_l, a_l = ys[:, live], za[:, live], c[live], a[:, live]
        h = (1 - y_l * za_l).clamp_min_(0) * (y_l != 0)
        g = a_l - z.T @ (y_l * h) * (2 * c_l)
        gn = torch.linalg.vector_norm(g, dim=0)
        if it == 0:
            g0 = gn.clone()
        keep = gn > tol * g0[live]
        if not bool(keep.any()):
            return a, 0
        live, y_l, za_l, c_l, a_l, g, gn, h = (t[..., keep] for t in (live, y_l, za_l, c_l, a_l, g, gn, h))
        w = (h > 0) * (2 * c_l)  # generalised Hessian: I + Zᵀ diag(w) Z
        eta = torch.sqrt(gn / g0[live]).clamp_(max=0.5)  # forcing term (superlinear near the optimum)
        rows = (w > 0).any(dim=1)  # late on, few rows are active: the Hessian only needs those
        zr, wr = (zh, w) if bool(rows.float().mean() > 0.7) else (zh[rows], w[rows])
        wr = wr.to(zh.dtype)
        d = _pcg(zr, wr, 1 + (zr * zr).T @ wr, -g.to(zh.dtype), eta.to(zh.dtype), max_cg).to(z.dtype)
        zd = z @ d
        t = _line_search(a_l, d, za_l, zd, y_l, c_l)
        a[:, live] = a_l + t * d
        za[:, live] = za_l + t * zd
    return a, len(live)


def _pcg(z: torch.Tensor, w: torch.Tensor, diag: torch.Tensor, b: torch.Tensor, eta: torch.Tensor,
         max_iter: int) -> torch.Tensor:
    """Jacobi-preconditioned CG on ``(I + Zᵀ diag(w_p) Z) x_p = b_p`` per column, to ‖residual‖ ≤ eta_p ‖b_p‖.

    Finished columns are frozen on the device, and dropped from the products once a quarter of them have finished.
    """
    out = torch.zeros_like(b)
    cols = torch.arange(b.shape[1], device=b.device)
    thresh = (eta * torch.linalg.vector_norm(b, dim=0)) ** 2
    x, res = torch.zeros_like(b), b.clone()
    s = res / diag
    p = s.clone()
    rs = torch.linalg.vecdot(res, s, dim=0)
    running = torch.ones_like(rs, dtype=torch.bool)
    every = _CHECK_EVERY.get(b.device.type, 1)
    for it in range(1, max_iter + 1):
        hp = torch.addmm(p, z.T, w * (z @ p))
        alpha = torch.where(running, rs / torch.linalg.vecdot(p, hp, dim=0), 0)  # where: 0/0 stays out
        x.addcmul_(p, alpha)
        res.addcmul_(hp, alpha, value=-1)
        running &= torch.linalg.vecdot(res, res, dim=0) > thresh
        if it % every == 0 or it == max_iter:
            n_running = int(running.sum())
            if n_running == 0:
                break
            if n_running <= 0.75 * len(running):
                out[:, cols[~running]] = x[:, ~running]
                cols, x, res, p, rs, w, diag, thresh = (t[..., running] for t in (cols, x, res, p, rs, w, diag, thresh))
                running = running[running]
        s = res / diag
        rs_new = torch.linalg.vecdot(res, s, dim=0)
        p = torch.addcmul(s, p, torch.where(running, rs_new / rs, 0))
        rs = rs_new
    out[:, cols] = x
    return out


def _line_search(a: torch.Tensor, d: torch.Tensor, za: torch.Tensor, zd: torch.Tensor, ys: torch.Tensor,
                 c: torch.Tensor, max_iter: int = 30) -> torch.Tensor:
    """Exact step along d: the objective is a convex piecewise quadratic in t; safeguarded Newton on its slope."""
    ad, dd = (a * d).sum(0), (d * d).sum(0)
    slack, yzd, inside = 1 - ys * za, ys * zd, ys != 0
    t = torch.ones_like(ad)
    lo, hi = torch.zeros_like(ad), torch.full_like(ad, math.inf)
    slope0 = torch.zeros_like(ad)
    for it in range(max_iter):
        h = (slack - t * yzd).clamp_min_(0) * inside
        slope = ad + t * dd - 2 * c * (yzd * h).sum(0)
        curv = dd + 2 * c * ((h > 0) * yzd * yzd).sum(0)
        if it == 0:
            slope0 = slope.abs()
        lo, hi = torch.where(slope < 0, t, lo), torch.where(slope > 0, t, hi)
        step = t - slope / curv.clamp_min(torch.finfo(t.dtype).tiny)
        step = torch.where((step < lo) | (step > hi), (lo + hi) / 2, step)  # bisect the bracket; hi is finite here
        # strong Wolfe condition (c2 = 1e-3), or the step no longer moves (slope at rounding level)
        done = (slope.abs() <= 1e-3 * slope0) | ((step - t).abs() <= 1e-9 * t)
        t = torch.where(done, t, step)
        if bool(done.all()):
            break
    return t
