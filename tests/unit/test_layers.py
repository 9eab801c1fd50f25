"""Property tests of the cyclic layers and the architecture family, against independently built expectations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from deepsea.nets.layers.cyclic import CyclicDenseRoll, CyclicPool, CyclicRoll, CyclicSlice
from deepsea.nets.layers.maxout import MaxoutLinear
from deepsea.nets.layers.untied_bias import UntiedBiasConv2d
from deepsea.nets.registry import ARCHITECTURES, build_model


def test_slice_builds_the_four_turns_with_numpy() -> None:
    x = torch.arange(2 * 9, dtype=torch.float32).reshape(2, 1, 3, 3)
    out = CyclicSlice()(x).numpy()
    assert out.shape == (8, 1, 3, 3)
    for k in range(4):
        np.testing.assert_array_equal(out[2 * k : 2 * k + 2], np.rot90(x.numpy(), k, axes=(2, 3)))
    assert CyclicSlice(dihedral=True)(x).shape == (16, 1, 3, 3)
    assert CyclicSlice(n_bases=2)(torch.cat([x, x], 1)).shape == (16, 1, 3, 3)


def test_roll_against_hand_built_example() -> None:
    # batch of one image: orientation g has a single map whose values are g*10 + position
    maps = [torch.arange(4, dtype=torch.float32).reshape(1, 1, 2, 2) + 10 * g for g in range(4)]
    out = CyclicRoll()(torch.cat(maps, 0))
    assert out.shape == (4, 4, 2, 2)  # (4B, C, H, W) -> (4B, 4C, H, W)
    # orientation 1 stacks: its own map, orientation 2 turned back by 90, 3 by 180, 0 by 270 degrees
    expected = [
        maps[1][0, 0],
        np.rot90(maps[2][0, 0].numpy(), -1),
        np.rot90(maps[3][0, 0].numpy(), -2),
        np.rot90(maps[0][0, 0].numpy(), -3),
    ]
    for c in range(4):
        np.testing.assert_array_equal(out[1, c].numpy(), np.asarray(expected[c]))
    # hand-checked single value: orientation 0, channel 1 is orientation 1's map [[10,11],[12,13]] turned clockwise
    np.testing.assert_array_equal(out[0, 1].numpy(), [[12, 10], [13, 11]])


def test_dense_roll_and_pool() -> None:
    x = torch.arange(8, dtype=torch.float32).reshape(4, 2)  # 4 orientations, B=1, D=2
    rolled = CyclicDenseRoll(4)(x)
    np.testing.assert_array_equal(rolled[1].numpy(), [2, 3, 4, 5, 6, 7, 0, 1])
    pooled = CyclicPool(4, "rms")(x)
    np.testing.assert_allclose(pooled.numpy(), np.sqrt((x.numpy() ** 2).mean(0, keepdims=True)), rtol=1e-6)
    np.testing.assert_array_equal(CyclicPool(4, "max")(x).numpy(), [[6, 7]])
    np.testing.assert_array_equal(CyclicPool(4, "mean")(x).numpy(), [[3, 4]])


@pytest.mark.parametrize("architecture", ["convroll4", "convroll_all_broaden_7x7", "triplescale_fs2_fs5"])
def test_cyclic_net_is_invariant_to_90_degree_turns(architecture: str) -> None:
    torch.manual_seed(0)
    model = build_model(architecture, 5, 31, {"width": 0.125, "depth": 2}).eval()
    xs = [torch.randn(3, len(s.rotations), s.size, s.size, dtype=torch.float64) for s in model.inputs]
    model = model.double()
    out = model(*xs)
    for k in (1, 2, 3):
        turned = model(*[torch.rot90(x, k, dims=(2, 3)) for x in xs])
        torch.testing.assert_close(turned, out, rtol=1e-9, atol=1e-9)
    assert not torch.allclose(model(*[x.transpose(2, 3) for x in xs]), out)  # not trivially constant


def test_eight_way_dihedral_net_is_also_invariant_to_flips() -> None:
    torch.manual_seed(0)
    model = build_model("cp8_dihedral", 5, 31, {"width": 0.125, "depth": 2}).eval().double()
    x = torch.randn(3, 1, 31, 31, dtype=torch.float64)
    out = model(x)
    for transformed in (x.flip(3), x.flip(2), x.transpose(2, 3), torch.rot90(x, 1, dims=(2, 3))):
        torch.testing.assert_close(model(transformed), out, rtol=1e-9, atol=1e-9)


def test_cp8_pools_over_0_and_45_degree_inputs() -> None:
    torch.manual_seed(0)
    model = build_model("cp8", 5, 31, {"width": 0.125, "depth": 2}).eval().double()
    assert model.inputs[0].rotations == (0.0, 45.0) and model.streams[0].slice.group_size == 8
    x = torch.randn(3, 2, 31, 31, dtype=torch.float64)  # channel 0: the view, channel 1: the view turned 45 degrees
    out = model(x)
    torch.testing.assert_close(model(torch.rot90(x, 1, dims=(2, 3))), out, rtol=1e-9, atol=1e-9)
    # the 8 orientations are a group: swapping which input is "0 degrees" and turning one of them
    # (45 -> 0, 0 -> -45 = 315 = 45 + 270) permutes them, so the output is unchanged
    swapped = torch.stack([x[:, 1], torch.rot90(x[:, 0], -1, dims=(1, 2))], dim=1)
    torch.testing.assert_close(model(swapped), out, rtol=1e-9, atol=1e-9)


def test_data_pipeline_makes_the_45_degree_channel() -> None:
    from deepsea.data.augment import AffineParams, InputSpec, view
    from deepsea.data.batches import Normalisation, views_batch
    from deepsea.data.imageset import ImageSet

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (40, 30), dtype=np.uint8)
    images = ImageSet.from_images([image], ["a"], [0], ["c"])
    spec = InputSpec(31, None, (0.0, 45.0))
    (batch,) = views_batch(images, np.array([0]), [spec], Normalisation(0.0, 1.0), [AffineParams(rotation=10.0)])
    assert batch.shape == (1, 2, 31, 31)
    np.testing.assert_allclose(batch[0, 1].numpy(), view(image, 31, AffineParams(rotation=55.0)), atol=1e-6)


def test_orthogonal_init_square_layers() -> None:
    model = build_model("convroll4", 10, 31, {"width": 0.25, "depth": 2, "dense": 64})
    square = [
        m.weight for m in model.modules() if isinstance(m, torch.nn.Linear) and m.weight.shape[0] == m.weight.shape[1]
    ]
    convs = [m.weight.reshape(m.weight.shape[0], -1) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert square or convs
    for w in square + [c for c in convs if c.shape[0] <= c.shape[1]]:
        eye = torch.eye(w.shape[0])
        torch.testing.assert_close(w @ w.T, eye, atol=1e-5, rtol=0)


def test_seed_003_thirteen_layer_model_shapes() -> None:
    model = build_model("convroll4", 121, 95, {})
    convs = [m for m in model.modules() if isinstance(m, UntiedBiasConv2d)]
    maxouts = [m for m in model.modules() if isinstance(m, MaxoutLinear)]
    assert len(convs) == 10 and len(maxouts) == 2  # + the softmax layer: 13 layers with parameters
    assert [m.units for m in maxouts] == [512, 512] and model.head[-1].out_features == 121
    assert [c.conv.out_channels for c in convs] == [32, 16, 64, 32, 128, 128, 64, 256, 256, 128]
    # map sizes as in the table: 95 -> 47 -> 23 -> 11 -> 5, and (4B, 512, 5, 5) after the last roll
    assert [c.bias.shape[-1] for c in convs] == [95, 95, 47, 47, 23, 23, 23, 11, 11, 11]
    assert model.streams[0].out_shape == (512, 5, 5)
    x = torch.randn(2, 1, 95, 95)
    assert model.streams[0].features(model.streams[0].slice(x)).shape == (8, 512, 5, 5)
    assert model(x).shape == (2, 121)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_builds_small(architecture: str) -> None:
    small = {"plain": {"widths": [4, 8], "dense": 8}, "pretrained": {"backbone": "resnet18", "weights": "none"},
             "probe": {"weights": "none"}}  # fmt: skip
    params = small.get(architecture, {"width": 0.125, "depth": 2})
    model = build_model(architecture, 7, 31, params)
    xs = [torch.randn(2, len(s.rotations), s.size, s.size) for s in model.inputs]
    assert model(*xs).shape == (2, 7)


def test_unknown_param_is_named() -> None:
    from deepsea.errors import ConfigError

    with pytest.raises(ConfigError, match=r"models\.x\.params: unknown \['widht'\]"):
        build_model("convroll4", 3, 31, {"widht": 0.5}, "models.x")


def test_untied_bias_has_one_bias_per_position() -> None:
    layer = UntiedBiasConv2d(2, 3, 3, size=5)
    assert layer.bias.shape == (3, 5, 5)
    with torch.no_grad():
        layer.conv.weight.zero_()
        layer.bias.copy_(torch.arange(75, dtype=torch.float32).reshape(3, 5, 5))
    np.testing.assert_array_equal(layer(torch.randn(1, 2, 5, 5))[0].detach().numpy(), layer.bias.detach().numpy())


def test_channels_last_inference_gives_the_same_numbers_as_training_layout() -> None:
    # predict.py runs models channels_last: the roll must keep that layout (no conversion copy before the next
    # convolution), and the roll and the bias add must not change a bit (only the convolution kernels differ)
    torch.manual_seed(0)
    roll_input = torch.randn(8, 3, 5, 5)
    nhwc = roll_input.contiguous(memory_format=torch.channels_last)
    rolled = CyclicRoll()(nhwc)
    assert rolled.is_contiguous(memory_format=torch.channels_last)
    assert CyclicRoll()(roll_input).is_contiguous()
    assert torch.equal(rolled, CyclicRoll()(roll_input))
    layer = UntiedBiasConv2d(3, 4, 3, size=5)
    with torch.no_grad():
        layer.bias.normal_()
        assert torch.equal(layer.to(memory_format=torch.channels_last)(nhwc), layer(roll_input))
    model = build_model("convroll4", 5, 31, {"width": 0.125, "depth": 2}).eval()
    x = torch.randn(3, 1, 31, 31)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        torch.testing.assert_close(model(x.contiguous(memory_format=torch.channels_last)), expected)
