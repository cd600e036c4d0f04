"""Data sets by name, the seeded split, and the pipelines."""

import numpy as np
import pytest

from search.data import describe_input, leak, load_data, pipeline
from search.data.split import split_indices
from search.errors import DataError
from search.spec.schema import Augmentation, Dataset


def test_digits_is_embedded_resized_standardised_and_split_by_seed():
    data = load_data(Dataset(name="digits", input_size=16, validation_split=0.25, seed=3))
    assert data.x_train.shape[1:] == (16, 16, 1) == data.input_shape == data.x_test.shape[1:]
    assert len(data.y_test) == round(1797 * 0.2)  # test_split's default
    assert len(data.y_train) + len(data.y_val) + len(data.y_test) == 1797
    assert len(data.y_val) == round((1797 - len(data.y_test)) * 0.25)
    assert data.num_classes == 10
    assert abs(float(data.x_train.mean())) < 1e-3 and abs(float(data.x_train.std()) - 1) < 1e-2
    again = load_data(Dataset(name="digits", input_size=16, validation_split=0.25, seed=3))
    other = load_data(Dataset(name="digits", input_size=16, validation_split=0.25, seed=4))
    assert again.fingerprint == data.fingerprint and np.array_equal(again.y_val, data.y_val)
    assert other.fingerprint != data.fingerprint


def test_subset_takes_a_seeded_sample():
    data = load_data(Dataset(name="digits", input_size=8, subset=100, validation_split=0.2, seed=1))
    assert len(data.y_train) == 80 and len(data.y_val) == 20 and len(data.y_test) == 359
    assert describe_input(Dataset(name="digits", input_size=8)) == ((8, 8, 1), 10)


def test_npz_arrays_load_with_their_own_labels(tmp_path):
    rng = np.random.RandomState(0)
    path = tmp_path / "d.npz"
    np.savez(path, x=rng.randint(0, 255, (40, 12, 12, 3)).astype("uint8"), y=np.repeat([3, 7], 20))
    data = load_data(Dataset(name="npz", path=path, input_size=12, validation_split=0.25, seed=1))
    assert data.input_shape == (12, 12, 3) and data.num_classes == 2
    assert set(np.unique(data.y_train)) <= {0, 1}
    assert describe_input(Dataset(name="npz", path=path, input_size=12)) == ((12, 12, 3), 2)


def test_npz_without_labels_is_a_clear_error(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, images=np.zeros((4, 8, 8)))
    with pytest.raises(DataError, match="needs `x`"):
        load_data(Dataset(name="npz", path=path, seed=1))


def test_image_folder_loads_class_named_folders(tmp_path):
    from PIL import Image

    for label, colour in (("cats", 30), ("dogs", 220)):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.fromarray(np.full((20, 20, 3), colour + i, dtype="uint8")).save(tmp_path / label / f"{i}.png")
    data = load_data(Dataset(name="folder", path=tmp_path, input_size=8, validation_split=0.2, seed=1))
    assert data.input_shape == (8, 8, 3) and data.num_classes == 2
    assert (len(data.y_train), len(data.y_val), len(data.y_test)) == (6, 2, 2)


def _image_folder(root, modes: dict[str, str], fmt: str = "png"):
    """Two classes of 8x8 images, each file in the PIL mode `modes` gives it (by file stem, else "L");
    the pixel values say which image they are."""
    from PIL import Image

    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for i in range(3):
            stem = f"{label}{i}"
            gray = (np.arange(64, dtype="uint8").reshape(8, 8) * 3 + 10 * i + (100 if label == "b" else 0)).astype("uint8")
            image = Image.fromarray(gray, "L").convert(modes.get(stem, "L"))
            image.save(root / label / f"{stem}.{fmt}")
    return root


@pytest.mark.parametrize("fmt", ["png", "bmp", "jpeg"])
def test_a_grayscale_image_folder_loads_with_one_channel(tmp_path, fmt):
    from search.data import describe_arrays, load_arrays

    root = _image_folder(tmp_path / "images", {"a1": "LA", "b2": "1"} if fmt == "png" else {}, fmt)
    spec = Dataset(name="folder", path=root, input_size=8, test_split=0.0, validation_split=0.5, seed=1)
    assert describe_arrays(spec).channels == 1 and describe_input(spec) == ((8, 8, 1), 2)
    x, y = load_arrays(spec)
    assert x.shape == (6, 8, 8, 1) and y.tolist() == [0, 0, 0, 1, 1, 1]
    if fmt != "jpeg":  # lossless: the grey levels themselves, scaled to [0, 1]
        from PIL import Image

        expected = np.asarray(Image.open(root / "a" / f"a0.{fmt}"), dtype="float32") / 255
        np.testing.assert_allclose(x[0, ..., 0], expected, atol=1e-6)
    assert load_data(spec).input_shape == (8, 8, 1)


def test_an_rgb_image_folder_and_a_mixed_one_load_with_three_channels(tmp_path):
    from search.data import load_arrays

    rgb = _image_folder(tmp_path / "rgb", {f"{label}{i}": "RGB" for label in "ab" for i in range(3)})
    rgb_spec = Dataset(name="folder", path=rgb, input_size=8, test_split=0.0, seed=1)
    assert describe_input(rgb_spec) == ((8, 8, 3), 2) and load_arrays(rgb_spec)[0].shape == (6, 8, 8, 3)
    mixed = _image_folder(tmp_path / "mixed", {"b1": "RGBA"})  # one colour image among grayscale ones
    spec = Dataset(name="folder", path=mixed, input_size=8, test_split=0.0, seed=1)
    assert describe_input(spec) == ((8, 8, 3), 2)
    x, _ = load_arrays(spec)
    assert x.shape == (6, 8, 8, 3)
    assert np.array_equal(x[0, ..., 0], x[0, ..., 1]) and np.array_equal(x[0, ..., 0], x[0, ..., 2])  # grey, repeated
    palette = _image_folder(tmp_path / "palette", {}, "gif")  # a GIF is a palette image: colour, whatever its palette
    assert describe_input(Dataset(name="folder", path=palette, input_size=8, seed=1)) == ((8, 8, 3), 2)


def test_training_pipeline_shuffles_from_the_seed_and_augments():
    data = load_data(Dataset(name="digits", input_size=8, subset=64, seed=1))
    first = [y.numpy().tolist() for _, y in pipeline(data.x_train, data.y_train, 16, seed=5, shuffle=True)]
    second = [y.numpy().tolist() for _, y in pipeline(data.x_train, data.y_train, 16, seed=5, shuffle=True)]
    assert first == second and sum(map(len, first)) == len(data.y_train)
    assert first[0] != data.y_train[:16].tolist()
    noisy = pipeline(data.x_train, data.y_train, 16, seed=5, shuffle=False, augmentation=Augmentation(noise=0.5, crop_padding=2))
    x, _ = next(iter(noisy))
    assert x.shape == (16, 8, 8, 1)
    assert not np.allclose(x.numpy(), data.x_train[:16])


def test_corruption_shrinks_each_image_to_a_random_place_and_keeps_the_split():
    plain = load_data(Dataset(input_size=16, seed=3))
    shrunk = load_data(Dataset(input_size=16, corruption={"scale": 0.5}, seed=3))
    again = load_data(Dataset(input_size=16, corruption={"scale": 0.5}, seed=3))
    assert np.array_equal(plain.y_train, shrunk.y_train) and np.array_equal(plain.y_val, shrunk.y_val)
    assert shrunk.fingerprint == again.fingerprint != plain.fingerprint
    background = shrunk.x_train.min()
    corners = set()
    for image in shrunk.x_train[:200, :, :, 0]:
        rows, cols = np.nonzero(image > background + 1e-4)
        assert rows.max() - rows.min() < 8 and cols.max() - cols.min() < 8  # drawn at half of 16 pixels
        corners.add((rows.min() // 4, cols.min() // 4))
    assert len(corners) > 4  # placed all over the canvas, not in one spot


def test_corruption_noise_is_added_after_standardising_from_its_own_seed():
    clean = load_data(Dataset(input_size=8, seed=2))
    noisy = load_data(Dataset(input_size=8, corruption={"noise": 0.5}, seed=2))
    residual = noisy.x_val - clean.x_val
    assert abs(residual.std() - 0.5) < 0.02 and abs(residual.mean()) < 0.02
    assert np.array_equal(load_data(Dataset(input_size=8, corruption={"noise": 0.5}, seed=2)).x_val, noisy.x_val)


def parts(split) -> list[set]:
    return [set(split.train.tolist()), set(split.validation.tolist()), set(split.test.tolist())]


def test_the_test_part_is_drawn_first_by_the_data_seed_and_never_moves_with_the_subset():
    """What a replicate, a subset or a validation fraction changes, the test images do not: only
    dataset.seed (and test_split) choose them."""
    whole = split_indices(Dataset(seed=5), 1797)
    train, validation, test = parts(whole)
    assert not (train & validation) and not (train & test) and not (validation & test)
    assert len(train | validation | test) == 1797 and len(test) == 359
    for other in (Dataset(seed=5, subset=300), Dataset(seed=5, validation_split=0.5), Dataset(seed=5, subset=50, validation_split=0.3)):
        assert parts(split_indices(other, 1797))[2] == test
        assert split_indices(other, 1797).hashes()["test_hash"] == whole.hashes()["test_hash"]
    assert parts(split_indices(Dataset(seed=6), 1797))[2] != test
    assert split_indices(Dataset(seed=5, test_split=0.0), 1797).test.size == 0


def test_a_smaller_subset_lies_inside_a_larger_ones_training_part():
    """A proxy search on a subset and its transfer on more of the same data: the proxy's training and
    validation images are all training images of the transfer, so `leak` finds none."""
    proxy, target = Dataset(seed=2, subset=600, validation_split=0.25), Dataset(seed=2, validation_split=0.4)
    seen = parts(split_indices(proxy, 1797))
    judged = parts(split_indices(target, 1797))
    assert seen[0] | seen[1] <= judged[0]
    assert leak(proxy, target) is None


def test_leak_counts_the_searched_images_a_target_would_be_judged_on():
    # the old layout's mistake: the proxy's images drawn from the whole set, here by another data seed
    problem = leak(Dataset(seed=1, subset=600), Dataset(seed=2, validation_split=0.4))
    assert problem is not None and "of the 600 images the search trains and selects on" in problem
    overlap = int(problem.split(" of the")[0].replace(",", ""))
    proxy, target = split_indices(Dataset(seed=1, subset=600), 1797), split_indices(Dataset(seed=2, validation_split=0.4), 1797)
    assert overlap == len(np.intersect1d(proxy.seen(), target.judged())) > 0
    assert leak(Dataset(seed=1, subset=1200), Dataset(seed=1, validation_split=0.4)) is not None  # larger than its training part
    assert leak(Dataset(seed=1, test_split=0.1), Dataset(seed=1)) is not None  # the search saw part of the test images
    assert leak(Dataset(name="digits", seed=1), Dataset(name="npz", path="other.npz", seed=1)) is None  # other images


def test_split_refuses_a_requested_test_part_without_images():
    with pytest.raises(DataError, match=r"dataset.test_split: 0.0002 of 1797 images holds no image"):
        load_data(Dataset(input_size=8, test_split=0.0002))
