"""Builders against the papers' numbers, and every axis combination builds and trains one batch."""

import itertools

import keras
import numpy as np
import pytest

from search.models.costs import model_costs
from search.models.registry import build_model

PAPER_HEAD = {"bn": "none", "conv": "dense", "head": "fc", "dropout": 0.5}


@pytest.mark.parametrize(
    "config, params",
    [("A", 132_863_336), ("A-LRN", 132_863_336), ("B", 133_047_848), ("C", 133_638_952), ("D", 138_357_544), ("E", 143_667_240)],
)
def test_vgg_parameter_counts_match_table_2(config, params):
    keras.backend.clear_session()
    model = build_model("vgg", input_shape=(224, 224, 3), num_classes=1000, config=config, **PAPER_HEAD)
    assert model.count_params() == params


@pytest.mark.parametrize("config, reference", [("D", "VGG16"), ("E", "VGG19")])
def test_vgg_d_and_e_equal_keras_applications(config, reference):
    keras.backend.clear_session()
    ours = build_model("vgg", input_shape=(224, 224, 3), num_classes=1000, config=config, **PAPER_HEAD)
    theirs = getattr(keras.applications, reference)(weights=None)
    assert ours.count_params() == theirs.count_params()
    ours_shapes = [tuple(w.shape) for w in ours.weights]
    theirs_shapes = [tuple(w.shape) for w in theirs.weights]
    assert ours_shapes == theirs_shapes


def test_config_c_has_pointwise_convs_where_d_has_3x3():
    keras.backend.clear_session()
    c = build_model("vgg", input_shape=(32, 32, 3), num_classes=10, config="C", width=0.125)
    d = build_model("vgg", input_shape=(32, 32, 3), num_classes=10, config="D", width=0.125)
    kernels = lambda m: [layer.kernel_size for layer in m.layers if isinstance(layer, keras.layers.Conv2D)]  # noqa: E731
    assert kernels(c).count((1, 1)) == 3 and kernels(d).count((1, 1)) == 0
    assert len(kernels(c)) == len(kernels(d)) == 13


@pytest.mark.parametrize("depth, paper", [(20, 0.27e6), (32, 0.46e6), (44, 0.66e6), (56, 0.85e6), (110, 1.7e6)])
def test_cifar_resnet_parameters_within_3_percent_of_table_6(depth, paper):
    keras.backend.clear_session()
    model = build_model("resnet", input_shape=(32, 32, 3), num_classes=10, depth=depth)
    assert abs(model.count_params() - paper) / paper < 0.03


def test_imagenet_resnets_and_plain_counterparts_share_their_conv_layers():
    keras.backend.clear_session()
    residual = build_model("resnet", input_shape=(224, 224, 3), num_classes=1000, depth=34)
    plain = build_model("resnet", input_shape=(224, 224, 3), num_classes=1000, depth=34, residual=False)
    assert abs(residual.count_params() - 21.8e6) / 21.8e6 < 0.01
    block_convs = lambda m: [layer.name for layer in m.layers if isinstance(layer, keras.layers.Conv2D) and "shortcut" not in layer.name]  # noqa: E731
    assert block_convs(plain) == block_convs(residual)
    assert not any(isinstance(layer, keras.layers.Add) for layer in plain.layers)
    assert sum(isinstance(layer, keras.layers.Add) for layer in residual.layers) == 16


def test_separable_3x3_64_to_64_has_the_mobilenet_weight_count():
    def one_unit(conv):
        keras.backend.clear_session()
        model = build_model("resnet", input_shape=(8, 8, 64), num_classes=2, depth=8, conv=conv, width=4.0)
        layer = model.get_layer("stage1_block1_1_conv" if conv == "dense" else "stage1_block1_1_sepconv")
        return sum(int(np.prod(w.shape)) for w in layer.weights)

    assert one_unit("dense") == 36_864
    assert one_unit("separable") == 4_672


def test_costs_count_mult_adds_of_convs_and_dense_layers():
    keras.backend.clear_session()
    model = build_model("vgg", input_shape=(224, 224, 3), num_classes=1000, config="D", **PAPER_HEAD)
    costs = model_costs(model)
    assert costs["mult_adds"] == 15_470_264_320  # VGG-16's well-known 15.5 G multiply-adds
    assert costs["flops"] == 2 * costs["mult_adds"]
    # by hand: a separable 3x3 conv 4->8 at 5x5 "same": depthwise 5*5*4*9 + pointwise 5*5*4*8
    inputs = keras.Input((5, 5, 4))
    sep = keras.Model(inputs, keras.layers.SeparableConv2D(8, 3, padding="same")(inputs))
    assert model_costs(sep)["mult_adds"] == 5 * 5 * 4 * 9 + 5 * 5 * 4 * 8


def test_layer_names_are_deterministic_and_readable():
    def names():
        keras.backend.clear_session()
        return [layer.name for layer in build_model("resnet", input_shape=(16, 16, 1), num_classes=10, depth=8, se=True).layers]

    first = names()
    assert first == names()
    assert "stage2_block1_shortcut_conv" in first and "stage3_block1_se_scale" in first


AXES = list(itertools.product(["none", "post", "pre"], ["dense", "separable"], [False, True]))


@pytest.mark.parametrize("bn, conv, residual", AXES)
@pytest.mark.parametrize("family", ["vgg", "resnet"])
def test_every_axis_combination_trains_one_batch(family, bn, conv, residual):
    """Each (bn, conv, residual) triple, with kernel, head, SE and the family's depth cycled through."""
    index = AXES.index((bn, conv, residual))
    extra = {
        "kernel": (1, 3, 5)[index % 3],
        "head": ("gap", "fc")[index % 2],
        "se": index % 4 == 1,
        "dropout": 0.5 if index % 2 else 0.0,
        "fc_units": 16,
        "width": 0.125 if family == "vgg" else 0.25,
    }
    if family == "vgg":
        extra["config"] = ("A", "A-LRN", "B", "C", "D", "E")[index % 6]
    else:
        extra["depth"] = (8, 14)[index % 2]
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_model(family, input_shape=(32, 32, 1), num_classes=10, bn=bn, conv=conv, residual=residual, **extra)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.RandomState(0).rand(4, 32, 32, 1).astype("float32")
    y = np.arange(4) % 10
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert model.predict(x, verbose=0).shape == (4, 10)
    if residual:
        assert any(isinstance(layer, keras.layers.Add) for layer in model.layers)
    has_bn = any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert has_bn == (bn != "none")
    has_sep = any(isinstance(layer, keras.layers.SeparableConv2D) for layer in model.layers)
    assert has_sep == (conv == "separable" and extra["kernel"] > 1)


@pytest.mark.parametrize(
    "family, values",
    [
        ("resnet", dict(depth=20, width=0.5, kernel=1)),
        ("resnet", dict(depth=8, width=0.5, residual=True)),
        ("resnet", dict(depth=18, width=0.25, bn="pre")),
        ("cells", dict(genotype="normal: identity(0)+identity(1); reduce: identity(0)+identity(1)", filters=8)),
    ],
)
def test_no_net_has_a_strided_1x1_conv(family, values):
    """oneDNN's weight gradient of a strided 1x1 conv with few channels corrupts the heap on odd batches:
    every builder subsamples first (blocks.pointwise)."""
    model = build_model(family, input_shape=(32, 32, 3), num_classes=10, **values)
    strided = [layer.name for layer in model.layers
               if isinstance(layer, keras.layers.Conv2D) and layer.kernel_size == (1, 1) and layer.strides != (1, 1)]
    assert strided == []
    assert any(isinstance(layer, keras.layers.MaxPooling2D) and layer.name.endswith("_subsample") for layer in model.layers)


def notes_xception(input_shape, num_classes):
    """The modern-convnet notes' Xception-style net, written as the notes write it (softmax head)."""
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = layers.Conv2D(filters=32, kernel_size=5, use_bias=False)(inputs)
    for size in [32, 64, 128, 256, 512]:
        residual = x
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(size, 3, padding="same", use_bias=False)(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        residual = layers.Conv2D(size, 1, strides=2, padding="same", use_bias=False)(residual)
        x = layers.add([x, residual])
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.5)(x)
    return keras.Model(inputs, layers.Dense(num_classes, activation="softmax")(x))


def test_the_xception_family_by_default_is_the_notes_net_weight_for_weight():
    keras.backend.clear_session()
    ours = build_model("xception", input_shape=(180, 180, 3), num_classes=2)
    theirs = notes_xception((180, 180, 3), 2)
    assert ours.count_params() == theirs.count_params()
    assert sorted(tuple(w.shape) for w in ours.weights) == sorted(tuple(w.shape) for w in theirs.weights)
    assert ours.output_shape == theirs.output_shape
    dropout = [layer.rate for layer in ours.layers if isinstance(layer, keras.layers.Dropout)]
    assert dropout == [0.5]


@pytest.mark.parametrize("bn, conv", list(itertools.product(["none", "post", "pre"], ["dense", "separable"])))
def test_every_xception_variant_trains_one_batch(bn, conv):
    index = ["none", "post", "pre"].index(bn)
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    model = build_model("xception", input_shape=(32, 32, 1), num_classes=10, bn=bn, conv=conv, width=0.125, se=index == 1,
                        kernel=(1, 3, 5)[index])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.random.RandomState(0).rand(4, 32, 32, 1).astype("float32")
    assert np.isfinite(model.train_on_batch(x, np.arange(4)))
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == (bn != "none")
    assert any(isinstance(layer, keras.layers.SeparableConv2D) for layer in model.layers) == (conv == "separable" and index > 0)
    assert sum(isinstance(layer, keras.layers.Add) for layer in model.layers) == 5
    assert any(layer.name.endswith("_se_scale") for layer in model.layers) == (index == 1)


def test_a_keras_application_is_its_base_for_the_input_then_a_softmax_for_the_classes():
    keras.backend.clear_session()
    ours = build_model("keras_app", input_shape=(32, 32, 1), num_classes=7, architecture="MobileNetV2", dropout=0.2)
    base = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 1), pooling="avg")
    assert ours.count_params() == base.count_params() + (1280 + 1) * 7
    assert ours.output_shape == (None, 7) and ours.get_layer("head_dropout").rate == 0.2
    assert model_costs(ours)["params"] == ours.count_params()
    norms = [layer for layer in ours.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == len([layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]) > 0
    assert {layer.momentum for layer in norms} == {0.9}  # the space's bn_momentum, not Keras' 0.99
    slow = build_model("keras_app", input_shape=(32, 32, 1), num_classes=7, architecture="MobileNetV2", dropout=0.2, bn_momentum=0.5)
    assert {layer.momentum for layer in slow.layers if isinstance(layer, keras.layers.BatchNormalization)} == {0.5}


def test_imagenet_weights_come_from_keras_cache_or_are_refused_naming_the_file(tmp_path, monkeypatch):
    import h5py
    from keras.src.backend import config
    from keras.src.legacy.saving import legacy_h5_format

    from search.errors import WeightsError

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path))  # where Keras keeps its cache
    values = dict(input_shape=(32, 32, 3), num_classes=4, architecture="MobileNetV2")
    with pytest.raises(WeightsError, match=r"imagenet needs mobilenet_v2_\S+_no_top\.h5, which is not in Keras' cache") as refused:
        build_model("keras_app", weights="imagenet", **values)
    missing = tmp_path / "models" / refused.value.message().split("needs ")[1].split(",")[0]
    assert str(missing) in refused.value.message()
    with pytest.raises(WeightsError, match="take 3-channel images; this data has 1"):
        build_model("keras_app", weights="imagenet", **(values | {"input_shape": (32, 32, 1)}))
    # a file in the cache is what the net starts from (here: random weights saved under ImageNet's name)
    saved = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg")
    missing.parent.mkdir(parents=True)
    with h5py.File(missing, "w") as out:
        legacy_h5_format.save_weights_to_hdf5_group(out, saved)
    loaded = build_model("keras_app", weights="imagenet", **values)
    assert np.array_equal(loaded.get_layer("Conv1").get_weights()[0], saved.get_layer("Conv1").get_weights()[0])
