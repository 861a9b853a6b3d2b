"""Tests for kit.probes.stats: the model noise the CV comparisons add to their test and interval
(the other statistics are tested with the probes that use them)."""

from __future__ import annotations

import numpy as np
import pytest

from kit.probes.stats import ModelNoise, bootstrap_mean_interval, sign_flip_test


def test_model_noise_is_the_standard_error_of_the_replicates():
    noise = ModelNoise.of_replicates([0.1, 0.2, 0.3])
    assert noise.scale == pytest.approx(0.1 / np.sqrt(3)) and noise.df == 2
    assert noise.exceed(np.array([0.0]))[0] == pytest.approx(0.5)
    assert ModelNoise(scale=0.0, df=1).exceed(np.array([-1.0, 0.0, 1.0])).tolist() == [1, 1, 0]
    with pytest.raises(ValueError, match="replicates must be at least 2 finite numbers"):
        ModelNoise.of_replicates([0.1])
    with pytest.raises(ValueError, match="scale must be a finite number >= 0; received scale=-1"):
        ModelNoise(scale=-1.0, df=2)


def test_noise_weakens_the_sign_flip_test_and_widens_the_interval():
    values = np.repeat([0.3, 0.25, 0.2, 0.35, 0.3, 0.28, 0.22, 0.31], 5)
    clusters = np.repeat(np.arange(8), 5)
    exact = sign_flip_test(values, clusters)
    assert exact.p_value == pytest.approx(2 ** -8)
    small = sign_flip_test(values, clusters, noise=ModelNoise(scale=0.01, df=2))
    large = sign_flip_test(values, clusters, noise=ModelNoise(scale=0.3, df=2))
    assert exact.p_value <= small.p_value < 0.05 < large.p_value
    plain = bootstrap_mean_interval(values, clusters=clusters, n_resamples=500)
    noisy = bootstrap_mean_interval(values, clusters=clusters, n_resamples=500,
                                    noise=ModelNoise(scale=0.3, df=2))
    assert noisy.low < plain.low and noisy.high > plain.high
    assert noisy.estimate == plain.estimate


def test_random_patterns_take_the_noise_too():
    values = np.linspace(0.1, 0.3, 40)
    clusters = np.arange(40)  # more than 16 clusters: random sign patterns
    plain = sign_flip_test(values, clusters, n_permutations=199)
    noisy = sign_flip_test(values, clusters, n_permutations=199, noise=ModelNoise(scale=1.0,
                                                                                  df=2))
    assert plain.p_value == pytest.approx(1 / 200) and noisy.p_value > 0.05
