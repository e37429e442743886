"""benchmarks/int8_quant.py, which counts the 16-bit pair sums that saturate on CPUs without VNNI: its
arithmetic on tiny convolutions with known answers."""

from __future__ import annotations

import numpy as np

from conftest import load_script


def int8_quant():
    return load_script("benchmarks/int8_quant.py")


def conv(weights: np.ndarray, zero_point: int = 0, pads=(0, 0, 0, 0)) -> dict:
    return {"weights": weights.astype(np.int32), "input_zero_point": zero_point, "pads": list(pads)}


def test_pairs_follow_the_k_order():
    """nhwc pairs adjacent channels of one tap; nchw adjacent taps of one channel; an odd K pads its last."""
    bench = int8_quant()
    nhwc = bench.pair_indices((2, 1, 3), "nhwc")  # (C, KH, KW)
    assert nhwc[0].tolist() == [[0, 0, 0], [1, 0, 0]] and nhwc.shape == (3, 2, 3)
    nchw = bench.pair_indices((2, 1, 3), "nchw")
    assert nchw[0].tolist() == [[0, 0, 0], [0, 0, 1]] and nchw[1].tolist() == [[0, 0, 2], [1, 0, 0]]
    odd = bench.pair_indices((1, 1, 3), "nchw")
    assert odd.shape == (2, 2, 3) and odd[1, 1, 0] == -1


def test_saturation_of_full_range_weights_and_none_with_seven_bits():
    """Two channels at 255 against weights 127, 127 make 64,770: clamped to 32,767, an error of -32,003 on
    every output; weights of 64 make 32,640, which fits; a negative pair saturates at -32,768."""
    bench = int8_quant()
    x = np.full((1, 2, 1, 5), 255, np.uint8)  # (N, C, H, W)
    full = np.full((3, 2, 1, 1), 127)
    full[2] = -128
    error, counts = bench.saturation(x, conv(full), "nhwc")
    assert error.shape == (1, 3, 1, 5)
    np.testing.assert_array_equal(error[0, :2], 32767 - 2 * 255 * 127)
    np.testing.assert_array_equal(error[0, 2], -32768 + 2 * 255 * 128)
    assert counts["saturated_pair_fraction"] == 1.0 and counts["output_fraction_with_a_saturated_pair"] == 1.0
    error, counts = bench.saturation(x, conv(np.full((3, 2, 1, 1), 64)), "nhwc")
    assert not error.any() and counts["saturated_pair_sums"] == 0
    bound = bench.product_bound(x, conv(np.full((3, 2, 1, 1), 64)))
    assert bound["output_fraction_with_a_product_over_16383"] == 0.0


def test_order_decides_which_products_meet():
    """Channel 0 at 255 and channel 1 at 0, weights 127 on channel 0 at both taps: pairing channels (nhwc)
    never adds two large products; pairing taps (nchw) does, on every output."""
    bench = int8_quant()
    x = np.zeros((1, 2, 1, 3), np.uint8)
    x[0, 0] = 255
    w = np.zeros((1, 2, 1, 2))
    w[0, 0] = 127
    assert not bench.saturation(x, conv(w), "nhwc")[0].any()
    error, _ = bench.saturation(x, conv(w), "nchw")
    np.testing.assert_array_equal(error, np.full((1, 1, 1, 2), 32767 - 2 * 255 * 127))
