"""The on-paper GPU estimates: FLOPs counted on real Keras layers, and the gpu profile within a free T4's budget."""

from __future__ import annotations

import keras
import pytest

from tlhelpers import estimates
from tlhelpers.profile import CHAPTERS


def test_layer_flops_are_two_per_multiply_add():
    inputs = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(4, 3, padding="same")
    depthwise = keras.layers.DepthwiseConv2D(3, padding="valid")
    dense = keras.layers.Dense(2)
    x = depthwise(conv(inputs))
    outputs = dense(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    assert estimates.layer_flops(conv) == 2 * (8 * 8) * (3 * 3 * 3) * 4
    assert estimates.layer_flops(depthwise) == 2 * (6 * 6) * (3 * 3) * 4
    assert estimates.layer_flops(dense) == 2 * (6 * 6 * 4) * 2
    assert estimates.forward_flops(model) == sum(estimates.layer_flops(layer) for layer in (conv, depthwise, dense))


def test_vgg16_costs_what_its_paper_says():
    """Simonyan & Zisserman's VGG16 (convolutions only): 15.3 G multiply-adds at 224 px."""
    forward, top = estimates.base_flops("vgg16", 224, 1)
    assert forward / 2 == pytest.approx(15.35e9, rel=0.01)
    assert 0 < top < forward / 4  # block5 works on 14×14 maps: a small share


def test_a_run_takes_the_longer_of_gpu_and_pipeline_time():
    run = estimates.Run("test", "vgg16", 64, train=100, val=0, epochs=2, trains="none")
    slow_gpu = estimates.Gpu("slow", 1e9, 1.0)
    fast_gpu = estimates.Gpu("fast", 1e18, 1.0)
    assert run.seconds(slow_gpu) == pytest.approx(run.flops / 1e9)
    assert run.seconds(fast_gpu) == pytest.approx(200 / estimates.PIPELINE_IMAGES_PER_S)
    all_layers = estimates.Run("test", "vgg16", 64, train=100, val=0, epochs=2, trains="all")
    assert all_layers.flops == pytest.approx(3 * run.flops)  # backward: twice the forward of what trains


def test_the_gpu_profile_fits_a_free_t4_and_full_does_not():
    gpu = estimates.estimate_table("gpu").groupby("chapter")["estimate s"].sum()
    assert set(gpu.index) == set(CHAPTERS)
    assert (gpu + estimates.ALLOWANCE_S <= estimates.BUDGET_S).all(), gpu
    full = estimates.estimate_table("full").groupby("chapter")["estimate s"].sum()
    assert full["cats_vs_dogs"] > estimates.BUDGET_S  # why the default with a GPU is not the full profile
