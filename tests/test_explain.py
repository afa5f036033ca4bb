"""Grad-CAM: the map points at the evidence, 2D and 3D, with the target layer found automatically."""

import numpy as np
import pytest
import torch
from torch import nn

from suite.core import Solution, create_model
from suite.core.errors import SuiteError
from suite.core.explain import explain_image, find_target_layer, gradcam, overlay


class BrightSpotNet(nn.Module):
    """Class 1's logit is the mean of a ReLU'd identity filter: evidence = bright pixels."""

    def __init__(self, dims: int = 2):
        super().__init__()
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.features = conv(1, 2, 3, padding=1, bias=False)
        with torch.no_grad():
            self.features.weight.zero_()
            centre = (0, 0, 1, 1) if dims == 2 else (0, 0, 1, 1, 1)
            self.features.weight[centre] = 1.0
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1) if dims == 2 else nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))

    def forward(self, x):
        return self.fc(self.pool(self.act(self.features(x))).flatten(1))


def test_gradcam_2d_points_at_the_bright_square():
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 4:12, 20:28] = 1.0
    cam = gradcam(BrightSpotNet(2), x, class_idx=1)
    assert cam.shape == (1, 32, 32) and cam.min() >= 0 and cam.max() <= 1
    inside = cam[0, 4:12, 20:28].mean()
    outside = np.delete(cam[0].ravel(), np.ravel_multi_index(np.mgrid[4:12, 20:28].reshape(2, -1), (32, 32))).mean()
    assert inside > 0.9 and outside < 0.1


def test_gradcam_batch_equals_one_at_a_time():
    """Each input's map uses its own class, whatever else is in the batch."""
    x = torch.zeros(2, 1, 32, 32)
    x[0, 0, 4:12, 20:28] = 1.0  # class 1 evidence (bright square)
    x[1] = -1.0  # no bright pixels: class 0 (channel 1 is silent) vs class 1 (zero) -> a different class
    net = BrightSpotNet(2)
    with torch.no_grad():
        net.features.weight[1, 0, 1, 1] = -1.0  # channel 1 fires on dark pixels -> class 0
    batch = gradcam(net, x)
    single = np.concatenate([gradcam(net, x[i:i + 1]) for i in range(2)])
    np.testing.assert_allclose(batch, single, atol=1e-6)
    assert batch[0, 4:12, 20:28].mean() > 0.9
    # no hook stays on the model (an app explains many photos with one cached model)
    assert not any(m._forward_hooks or m._backward_hooks for m in net.modules())


def test_gradcam_3d_points_at_the_bright_cube():
    x = torch.zeros(1, 1, 16, 16, 16)
    x[0, 0, 2:6, 10:14, 3:7] = 1.0
    cam = gradcam(BrightSpotNet(3), x, class_idx=1)
    assert cam.shape == (1, 16, 16, 16)
    peak = np.unravel_index(cam[0].argmax(), cam[0].shape)
    assert 2 <= peak[0] < 6 and 10 <= peak[1] < 14 and 3 <= peak[2] < 7


@pytest.mark.parametrize("spec,shape,expected", [
    ("monai:resnet18?spatial_dims=3", (1, 1, 32, 32, 32), "backbone.layer4"),
    ("small:cnn", (1, 1, 32, 32), "backbone.block3"),
])
def test_target_layer_is_the_last_spatial_stage(spec, shape, expected):
    model = create_model(spec, num_classes=2, in_chans=1, pretrained=False)
    x = torch.randn(*shape)
    assert find_target_layer(model, x) == expected
    cam = gradcam(model, x)
    assert cam.shape == (1, *shape[2:]) and np.isfinite(cam).all()
    assert model.training  # the model's mode is restored


def test_lite0_target_layer_and_overlay(chelsea):
    model = create_model("embedded:efficientnet_lite0", num_classes=1000)
    model.preprocess = model.preprocess.__class__(**{**model.preprocess.__dict__, "input_size": (3, 128, 128)})
    solution = Solution(model, [str(i) for i in range(1000)])
    cam, shown, k = explain_image(solution, chelsea)
    assert find_target_layer(model, solution.transform(chelsea)[None]) == "backbone.bn2"
    assert cam.shape == (128, 128) and shown.shape == (128, 128, 3) and shown.dtype == np.uint8
    assert 0 <= k < 1000 and cam.max() == pytest.approx(1.0, abs=1e-4)


def test_maps_equal_monai_gradcam():
    """The suite's one-pass Grad-CAM gives MONAI's maps (same weighting, ReLU, upsampling)."""
    import copy

    from monai.visualize import GradCAM

    from suite.core.explain import _min_max

    torch.manual_seed(0)
    model = create_model("embedded:efficientnet_lite0", num_classes=3).eval()
    x = torch.randn(2, 3, 96, 96)
    ours = gradcam(model, x, class_idx=[2, 0])
    reference = copy.deepcopy(model)  # MONAI leaves its hooks on the model it is given
    cam = GradCAM(nn_module=reference, target_layers="backbone.bn2", postprocessing=_min_max)
    theirs = torch.cat([cam(x[i:i + 1].clone().requires_grad_(True), class_idx=c) for i, c in enumerate([2, 0])])
    np.testing.assert_allclose(ours, theirs.detach().numpy()[:, 0], atol=1e-5)
    assert not np.allclose(ours[0], ours[1], atol=1e-2)  # two inputs, two classes: two different maps


def test_overlay_resizes_and_blends():
    img = np.zeros((40, 60), dtype=np.uint16)
    img[:, 30:] = 4000
    out = overlay(img, np.ones((10, 15)), alpha=0.5)
    assert out.shape == (40, 60, 3)
    assert out[:, 40:].mean() > out[:, :20].mean()  # the brighter half stays brighter under a flat map


def test_gradcam_rejects_non_image_input():
    with pytest.raises(SuiteError, match="image batch"):
        gradcam(BrightSpotNet(2), torch.zeros(3, 32))
    with pytest.raises(SuiteError, match="no convolutional feature map"):
        gradcam(nn.Sequential(nn.Flatten(), nn.Linear(16, 2)), torch.zeros(1, 1, 4, 4))
