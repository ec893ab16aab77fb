import numpy as np
from sklearn import metrics

from tfshop.evaluation.metrics import gauc


def per_user_auc_loop(y, p, users):
    total, weight = 0.0, 0
    for user in np.unique(users):
        rows = users == user
        if 0 < y[rows].sum() < rows.sum():
            total += metrics.roc_auc_score(y[rows], p[rows]) * rows.sum()
            weight += rows.sum()
    return total / weight


def test_gauc_equals_impression_weighted_per_user_auc_with_ties():
    rng = np.random.default_rng(0)
    users = rng.integers(0, 50, 2000).astype(str)
    y = (rng.random(2000) < 0.3).astype(float)
    p = np.round(rng.random(2000) + 0.3 * y, 1)  # coarse scores: many ties
    assert abs(gauc(y, p, users) - per_user_auc_loop(y, p, users)) < 1e-12


def test_gauc_skips_single_class_users_and_is_nan_without_any():
    users = np.array(["a", "a", "b", "b", "b"])
    y = np.array([1.0, 0.0, 1.0, 1.0, 1.0])
    assert gauc(y, np.array([0.9, 0.1, 0.5, 0.4, 0.3]), users) == 1.0
    assert np.isnan(gauc(np.ones(3), np.zeros(3), np.array(["a", "b", "c"])))
