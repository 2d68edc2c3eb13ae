"""utils.datasets: loading images of every awkward kind, ImageNet pre/deprocessing, sample photos.

Image fixtures are made in tmp_path with PIL and numpy; only data/cat.png and data/coffee.png
are read from the repository.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.models import SqueezeNet1_1_Weights, VGG16_Weights
from torchvision.transforms._presets import ImageClassification

from utils.datasets import (
    DATA_DIR,
    SAMPLE_IMAGES,
    ImageLoadError,
    _crop_first,
    decode_image,
    deprocess_imagenet_image,
    load_image,
    preprocess_imagenet_image,
    resize_crop_geometry,
    sample_image_path,
)

REPO_DATA = Path(__file__).resolve().parent.parent / "data"


def vgg_transforms() -> ImageClassification:
    return VGG16_Weights.IMAGENET1K_V1.transforms()


def load_error(source: object, **kwargs: object) -> str:
    """The message of the ImageLoadError that loading ``source`` raises, checked to be one line, from None."""
    with pytest.raises(ImageLoadError) as caught:
        load_image(source, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message, "the error must be one line"
    error = caught.value
    assert error.__cause__ is None and (error.__suppress_context__ or error.__context__ is None), "no chained traceback"
    return message


def read_rgb(path: Path) -> Image.Image:
    """The file as PIL alone converts it, for comparison (and closed again)."""
    with Image.open(path) as image:
        return image.convert("RGB")


def pixels(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image).astype(int)


# --- sample images ----------------------------------------------------------------------------


def test_sample_images_resolve_to_the_repository_data_folder_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert DATA_DIR == REPO_DATA
    assert dict(SAMPLE_IMAGES) == {
        "cat": "cat.png",
        "coffee": "coffee.png",
        "squirrel": "squirrel.jpg",
        "fruits": "fruits.jpg",
    }
    assert sample_image_path("cat") == REPO_DATA / "cat.png"
    assert sample_image_path(" Coffee ") == REPO_DATA / "coffee.png"
    assert load_image(sample_image_path("cat")).size == (451, 300)
    assert load_image(sample_image_path("coffee")).size == (600, 400)


def test_unknown_sample_image_lists_the_valid_names():
    with pytest.raises(ValueError, match=r"Unknown sample image 'dog'; valid names: cat, coffee, squirrel, fruits\."):
        sample_image_path("dog")


def test_sample_images_cannot_be_changed():
    with pytest.raises(TypeError):
        SAMPLE_IMAGES["dog"] = "dog.png"  # type: ignore[index]


# --- load_image: files that cannot be loaded --------------------------------------------------


def test_missing_file_names_the_path(tmp_path):
    message = load_error(tmp_path / "nope.png")
    assert str(tmp_path / "nope.png") in message and "no such file" in message


def test_missing_relative_path_says_where_relative_paths_start(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = load_error("photos/cat.jpg")
    assert "'photos/cat.jpg'" in message and str(tmp_path) in message


def test_directory_is_refused(tmp_path):
    message = load_error(tmp_path)
    assert str(tmp_path) in message and "directory" in message


def test_text_file_named_png_is_refused(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not an image")
    message = load_error(path)
    assert str(path) in message and "cannot read it as an image" in message and ".png" in message


def test_truncated_png_is_refused(tmp_path):
    data = (REPO_DATA / "cat.png").read_bytes()
    path = tmp_path / "half.png"
    path.write_bytes(data[: len(data) // 2])
    message = load_error(path)
    assert str(path) in message and "truncated" in message


def test_decompression_bomb_limit_gives_one_line(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (20, 20)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 400 pixels > 2 x limit: PIL refuses
    message = load_error(path)
    assert str(path) in message and "decompression-bomb" in message and "MAX_IMAGE_PIXELS" in message


def test_unsupported_source_type_raises_type_error():
    with pytest.raises(TypeError, match="Cannot load an image from a float"):
        load_image(3.5)  # type: ignore[arg-type]


# --- load_image: modes that need converting ---------------------------------------------------


def test_path_as_str_and_path_give_the_same_rgb_image():
    path = REPO_DATA / "coffee.png"
    assert np.array_equal(pixels(load_image(str(path))), pixels(load_image(path)))
    assert np.array_equal(pixels(load_image(path)), np.asarray(read_rgb(path)))


def test_grayscale_png_becomes_rgb_with_equal_channels(tmp_path):
    gray = np.array([[0, 100], [200, 255]], dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    rgb = pixels(load_image(tmp_path / "gray.png"))
    assert rgb.shape == (2, 2, 3)
    for channel in range(3):
        assert np.array_equal(rgb[..., channel], gray)


def test_rgba_png_is_composited_on_white(tmp_path):
    rgba = np.array([[[0, 0, 0, 0], [255, 0, 0, 255], [255, 0, 0, 128]]], dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    rgb = pixels(load_image(tmp_path / "rgba.png"))
    assert rgb[0, 0].tolist() == [255, 255, 255], "fully transparent shows white"
    assert rgb[0, 1].tolist() == [255, 0, 0], "opaque keeps its colour"
    assert rgb[0, 2, 0] == 255 and abs(rgb[0, 2, 1] - 127) <= 1 and abs(rgb[0, 2, 2] - 127) <= 1, "half red on white"


def test_palette_png_is_converted(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    image.putdata([0, 1])
    image.save(tmp_path / "palette.png")
    assert pixels(load_image(tmp_path / "palette.png")).tolist() == [[[10, 20, 30], [200, 100, 50]]]


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    image = Image.new("P", (2, 1))
    image.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    image.putdata([0, 1])
    image.save(tmp_path / "palette_t.png", transparency=0)  # palette entry 0 is transparent
    assert pixels(load_image(tmp_path / "palette_t.png")).tolist() == [[[255, 255, 255], [200, 100, 50]]]


def test_16_bit_png_is_scaled_to_8_bits_not_clipped(tmp_path):
    values = np.array([[0, 257 * 100, 65535, 1000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as opened:
        assert opened.mode.startswith("I"), "PIL opens it as a 16-bit mode"
    rgb = pixels(load_image(tmp_path / "deep.png"))
    assert rgb[..., 0].tolist() == [[0, 100, 255, 4]]  # round(v / 257); PIL's convert("L") would give 255s
    assert np.array_equal(rgb[..., 0], rgb[..., 2])


def test_cmyk_jpeg_is_converted_to_the_right_colour(tmp_path):
    cmyk = (100, 0, 50, 60)
    Image.new("CMYK", (8, 8), cmyk).save(tmp_path / "print.jpg", quality=100)
    c, m, y, k = cmyk
    expected = [round((255 - v) * (255 - k) / 255) for v in (c, m, y)]  # (119, 195, 157)
    got = pixels(load_image(tmp_path / "print.jpg"))[4, 4]
    assert np.abs(got - expected).max() <= 3, (got, expected)


def test_exif_rotation_is_honoured(tmp_path):
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:, :20] = (255, 0, 0)  # left half red
    stored[:, 20:] = (0, 0, 255)  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation 6: the stored left edge is the displayed top edge
    Image.fromarray(stored).save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    shown = load_image(tmp_path / "rotated.jpg")
    assert shown.size == (20, 40), "portrait once rotated"
    rgb = pixels(shown)
    assert rgb[5, 10, 0] > 200 and rgb[5, 10, 2] < 50, "top is red"
    assert rgb[35, 10, 2] > 200 and rgb[35, 10, 0] < 50, "bottom is blue"


def test_exif_rotation_of_a_pil_image_is_honoured_without_changing_it(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (40, 20), (0, 128, 0)).save(tmp_path / "rotated.jpg", exif=exif)
    with Image.open(tmp_path / "rotated.jpg") as opened:
        assert load_image(opened).size == (20, 40)
        assert opened.size == (40, 20) and opened.getexif()[0x0112] == 6


def test_tiny_image_loads_and_preprocessing_warns(tmp_path):
    Image.new("RGB", (8, 8), (10, 200, 30)).save(tmp_path / "tiny.png")
    assert load_image(tmp_path / "tiny.png").size == (8, 8)
    with pytest.warns(UserWarning, match=r"only 8x8 pixels"):
        x = preprocess_imagenet_image(tmp_path / "tiny.png")
    assert x.shape == (1, 3, 224, 224)


def test_sample_photos_do_not_warn(recwarn):
    preprocess_imagenet_image(sample_image_path("cat"))
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


@pytest.fixture(scope="module")
def camera_photo(tmp_path_factory) -> Path:
    """A 6000 x 4000 JPEG, smooth enough to compress small."""
    rng = np.random.default_rng(0)
    small = Image.fromarray((rng.random((40, 60, 3)) * 255).astype(np.uint8))
    path = tmp_path_factory.mktemp("photos") / "camera.jpg"
    small.resize((6000, 4000), Image.Resampling.BILINEAR).save(path, quality=90)
    return path


def test_big_jpeg_is_decoded_at_reduced_scale_when_allowed(camera_photo):
    assert load_image(camera_photo).size == (6000, 4000), "full size by default"
    assert load_image(camera_photo, min_side=512).size == (1500, 1000), "1/4 scale keeps the shorter side >= 512"
    assert load_image(camera_photo, min_side=4000).size == (6000, 4000)


def test_big_jpeg_preprocesses_close_to_a_full_size_decode(camera_photo):
    fast = preprocess_imagenet_image(camera_photo)
    full = vgg_transforms()(load_image(camera_photo)).unsqueeze(0)
    std = torch.tensor(vgg_transforms().std).view(1, 3, 1, 1)
    grey_levels = ((fast - full).abs() * std * 255).max().item()
    assert fast.shape == (1, 3, 224, 224)
    assert grey_levels <= 3, f"reduced-scale decode differs by {grey_levels:.1f} grey levels"


# --- load_image: arrays, tensors, PIL images --------------------------------------------------


def test_uint8_and_float_arrays_load_to_the_same_pixels():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    assert np.array_equal(pixels(load_image(rgb)), rgb)
    assert np.array_equal(pixels(load_image(rgb / 255.0)), rgb)
    assert np.array_equal(pixels(load_image(rgb.astype(np.int64))), rgb), "other integer types in 0-255"


def test_grayscale_and_single_channel_arrays_become_gray_rgb():
    gray = np.array([[0, 128], [64, 255]], dtype=np.uint8)
    for source in (gray, gray[..., None]):
        assert np.array_equal(pixels(load_image(source)), np.repeat(gray[..., None], 3, axis=2))


def test_rgba_array_is_composited_on_white():
    rgba = np.array([[[0, 0, 0, 0], [0, 255, 0, 255]]], dtype=np.uint8)
    assert pixels(load_image(rgba)).tolist() == [[[255, 255, 255], [0, 255, 0]]]


def test_uint16_array_is_treated_as_16_bit():
    assert pixels(load_image(np.array([[0, 65535, 257 * 10]], dtype=np.uint16)))[..., 0].tolist() == [[0, 255, 10]]


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.full((2, 2, 3), 1.5), "float pixels must lie in [0, 1]"),
        (np.full((2, 2), 300), "integer pixels must lie in 0-255"),
        (np.array([[0.5, np.nan]]), "NaN"),
        (np.zeros((3, 8, 8)), "channels last"),
        (np.zeros((4, 4, 2)), "expected H x W"),
        (np.zeros(5), "expected H x W"),
        (np.zeros((2, 2), dtype=bool), "pixel type bool"),
    ],
)
def test_bad_arrays_are_refused_naming_the_shape(array, expected):
    message = load_error(array)
    assert f"array of shape {array.shape}" in message
    assert expected in message


def test_normalised_tensor_is_refused_with_a_pointer_to_deprocess():
    message = load_error(preprocess_imagenet_image(sample_image_path("cat"))[0])
    assert "deprocess_imagenet_image" in message


def test_tensor_channels_first_matches_array_channels_last():
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    tensor = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255).requires_grad_()
    assert np.array_equal(pixels(load_image(tensor)), rgb)
    assert np.array_equal(pixels(load_image(torch.from_numpy(rgb[..., 0]))), pixels(load_image(rgb[..., 0])))
    assert "batch" in load_error(tensor.detach().unsqueeze(0))


def test_loading_never_changes_the_callers_object():
    rng = np.random.default_rng(3)
    array = rng.random((4, 4, 4))
    tensor = torch.rand(3, 4, 4)
    image = Image.fromarray((array * 255).astype(np.uint8), mode="RGBA")
    before = (array.copy(), tensor.clone(), np.asarray(image).copy())
    for source in (array, tensor, image):
        loaded = load_image(source)
        assert loaded is not source
    assert np.array_equal(array, before[0]) and torch.equal(tensor, before[1])
    assert image.mode == "RGBA" and np.array_equal(np.asarray(image), before[2])
    rgb = Image.new("RGB", (3, 3))
    assert load_image(rgb) is not rgb, "even an RGB image comes back as a new object"


# --- preprocess / deprocess -------------------------------------------------------------------


def test_preprocess_matches_torchvisions_vgg16_transforms_exactly():
    path = sample_image_path("cat")
    x = preprocess_imagenet_image(path)
    expected = vgg_transforms()(read_rgb(path)).unsqueeze(0)
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    assert torch.equal(x, expected)


def test_path_pil_array_and_tensor_give_the_same_input():
    path = sample_image_path("coffee")
    rgb = np.array(read_rgb(path))
    reference = preprocess_imagenet_image(path)
    with Image.open(path) as opened:
        assert torch.equal(preprocess_imagenet_image(opened), reference)
    for source in (rgb, rgb / 255.0, torch.from_numpy(rgb).permute(2, 0, 1)):
        assert torch.equal(preprocess_imagenet_image(source), reference)


def test_preprocess_keeps_aspect_by_cropping_and_squashes_when_asked():
    rgb = np.zeros((300, 600, 3), dtype=np.uint8)
    rgb[:, :150] = 255  # the left quarter is white: the centre crop cuts it off
    transforms = vgg_transforms()
    cropped = deprocess_imagenet_image(preprocess_imagenet_image(rgb, transforms))
    squashed = deprocess_imagenet_image(preprocess_imagenet_image(rgb, transforms, keep_aspect=False))
    assert cropped.max() < 0.01, "the white strip lies outside the centre crop"
    assert squashed[:, :50].min() > 0.99 and squashed[:, 60:].max() < 0.01, "the whole width, squashed"
    assert transforms.resize_size == [256], "the caller's transforms is not changed"


def test_squash_is_a_plain_resize_to_224():
    path = sample_image_path("cat")
    x = preprocess_imagenet_image(path, keep_aspect=False)
    resized = TF.resize(read_rgb(path), [224, 224], antialias=True)
    expected = TF.normalize(TF.to_tensor(resized), vgg_transforms().mean, vgg_transforms().std)
    assert torch.allclose(x[0], expected, atol=1e-6)


def test_preprocess_uses_the_transforms_it_is_given():
    small = ImageClassification(crop_size=32, resize_size=40)
    assert preprocess_imagenet_image(sample_image_path("cat"), small).shape == (1, 3, 32, 32)
    squeezenet = SqueezeNet1_1_Weights.IMAGENET1K_V1.transforms()
    assert preprocess_imagenet_image(sample_image_path("cat"), squeezenet).shape == (1, 3, 224, 224)


def test_preprocess_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="keep_aspect=False needs a torchvision ImageClassification"):
        preprocess_imagenet_image(np.zeros((8, 8)), TF.to_tensor, keep_aspect=False)
    with pytest.raises(TypeError, match="returned ndarray"):
        preprocess_imagenet_image(np.zeros((8, 8)), np.asarray)


def test_preprocess_moves_to_the_device():
    x = preprocess_imagenet_image(np.zeros((64, 64, 3)), keep_aspect=False, device="meta")
    assert x.device.type == "meta" and x.shape == (1, 3, 224, 224)


def test_deprocess_inverts_preprocess_and_never_mutates():
    x = preprocess_imagenet_image(sample_image_path("cat")).requires_grad_()
    before = x.detach().clone()
    picture = deprocess_imagenet_image(x)
    assert picture.shape == (224, 224, 3) and picture.dtype == np.float32
    assert 0.0 <= picture.min() and picture.max() <= 1.0
    assert np.array_equal(deprocess_imagenet_image(x[0]), picture), "1 x 3 x H x W and 3 x H x W agree"
    assert torch.equal(x.detach(), before)


def test_deprocess_reads_mean_and_std_from_the_transforms():
    identity = ImageClassification(crop_size=2, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    doubled = ImageClassification(crop_size=2, mean=(0.5, 0.5, 0.5), std=(2.0, 2.0, 2.0))
    x = torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1).expand(1, 3, 2, 2)
    assert np.allclose(deprocess_imagenet_image(x, identity)[0, 0], [0.1, 0.2, 0.3])
    assert np.allclose(deprocess_imagenet_image(x, doubled)[0, 0], [0.7, 0.9, 1.0]), "2x + 0.5, clipped at 1"


def test_deprocess_refuses_wrong_shapes():
    with pytest.raises(ValueError, match=r"got \(2, 3, 4, 4\)"):
        deprocess_imagenet_image(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"got \(4, 4\)"):
        deprocess_imagenet_image(torch.zeros(4, 4))


def test_deprocessed_input_lines_up_with_the_model_input():
    path = sample_image_path("cat")
    shown = deprocess_imagenet_image(preprocess_imagenet_image(path))
    crop = TF.center_crop(TF.resize(read_rgb(path), 256, antialias=True), 224)
    assert shown.shape == (224, 224, 3)
    assert np.allclose(shown, np.asarray(crop) / 255.0, atol=1e-6)
    squashed = deprocess_imagenet_image(preprocess_imagenet_image(path, keep_aspect=False))
    resized = TF.resize(read_rgb(path), [224, 224], antialias=True)
    assert np.allclose(squashed, np.asarray(resized) / 255.0, atol=1e-6)


# --- odd inputs (issue 12) --------------------------------------------------------------------


def bad_bmp() -> bytes:
    """A BMP whose info header claims size 7, which no BMP version has."""
    return b"BM" + bytes(12) + (7).to_bytes(4, "little") + bytes(64)


def png_cut_inside_ihdr() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3)).save(buffer, format="PNG")
    return buffer.getvalue()[:20]  # signature (8) + IHDR length and type (8) + 4 of its 13 data bytes


@pytest.mark.parametrize(
    ("content", "reason"),
    [(bad_bmp(), "Unsupported BMP header type"), (png_cut_inside_ihdr(), "Truncated")],
    ids=["bmp-header-size-7", "png-cut-in-ihdr"],
)
def test_damaged_headers_in_bytes_give_one_line_naming_the_file(content, reason):
    with pytest.raises(
        ImageLoadError, match=rf"^Cannot load image 'upload.bmp': PIL cannot decode it \({reason}"
    ) as caught:
        decode_image(content, "upload.bmp")
    assert "\n" not in str(caught.value)
    assert "PIL cannot decode it" in load_error(content)  # load_image takes a file's bytes too


def test_load_image_reads_a_files_bytes_like_the_file(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(np.arange(24, dtype=np.uint8).reshape(2, 4, 3)).save(path)
    assert np.array_equal(pixels(load_image(path.read_bytes())), pixels(load_image(path)))


def test_damaged_sgi_header_names_the_file(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (4, 3)).save(buffer, format="SGI")
    content = bytearray(buffer.getvalue())
    content[3] = 9  # bytes per pixel 9: PIL raises ValueError("Unsupported SGI image mode") while opening
    path = tmp_path / "scan.sgi"
    path.write_bytes(bytes(content))
    message = load_error(path)
    assert message.startswith(f"Cannot load image '{path}': PIL cannot decode it (Unsupported SGI image mode)")


def test_big_endian_16_bit_arrays_give_the_same_picture_as_little_endian():
    values = np.array([[0, 257, 65535], [1000, 30000, 514]], dtype="<u2")
    little, big = load_image(values), load_image(values.astype(">u2"))
    assert np.array_equal(pixels(big), pixels(little))
    assert pixels(little)[0, :, 0].tolist() == [0, 1, 255]


def test_a_32_bit_tiff_is_not_called_16_bit(tmp_path):
    path = tmp_path / "deep.tif"
    Image.fromarray(np.array([[0, 100_000]], dtype=np.int32)).save(path)
    message = load_error(path)
    assert "32-bit integer pixels (PIL mode 'I') are read as 16-bit and must lie in 0-65535" in message
    assert "16-bit pixels must" not in message


def test_a_symlink_loop_and_a_dangling_link_are_named_as_such(tmp_path):
    loop_a, loop_b, dangling = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "gone.png"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    dangling.symlink_to(tmp_path / "missing.png")
    assert "it is a loop of symbolic links" in load_error(loop_a)
    assert "it is a symbolic link to a missing file" in load_error(dangling)


def test_a_url_is_named_as_a_url_and_kept_intact():
    message = load_error("https://example.org/cat.png")
    assert message.startswith("Cannot load image 'https://example.org/cat.png': it is a URL")
    assert "download it first" in message and "no such file" not in message


@pytest.mark.parametrize("min_side", [np.int64(300), np.int32(300), 300])
def test_min_side_takes_any_integer(min_side):
    assert load_image(sample_image_path("cat"), min_side=min_side).size == (451, 300)


@pytest.mark.parametrize("min_side", [True, np.True_, 0, -3, 2.5, "300"])
def test_min_side_refuses_booleans_and_non_integers(min_side):
    with pytest.raises(ValueError, match="min_side must be a positive number of pixels or None"):
        load_image(sample_image_path("cat"), min_side=min_side)


@pytest.mark.parametrize("device", ["gpu", 3.5, "cuda:x"])
def test_preprocess_names_a_bad_device_in_one_line(device):
    with pytest.raises(ValueError, match=r"^device .* is not a torch device; use 'cpu', 'cuda' or 'mps'") as caught:
        preprocess_imagenet_image(np.zeros((64, 64, 3)), device=device)
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_preprocess_names_a_missing_device_in_one_line():
    with pytest.raises(ValueError, match=r"^device 'cuda' is not available here") as caught:
        preprocess_imagenet_image(np.zeros((64, 64, 3)), device="cuda")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_deprocess_refuses_nan_and_infinity(bad):
    x = torch.zeros(1, 3, 4, 4)
    x[0, 1, 2, 3] = bad
    with pytest.raises(ValueError, match="contains NaN or infinite values"):
        deprocess_imagenet_image(x)


def test_deprocess_takes_a_sparse_tensor_like_its_dense_self():
    x = torch.zeros(1, 3, 4, 4)
    x[0, 0, 1, 1] = 1.0
    assert np.array_equal(deprocess_imagenet_image(x.to_sparse()), deprocess_imagenet_image(x))


# --- the geometry of resize-then-crop ------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "short_side", "crop"),
    [
        ((640, 480), 256, (224, 224)),  # landscape; left margin 58.5 rounds down (half to even)
        ((480, 640), 256, (224, 224)),  # portrait
        ((333, 333), 256, (224, 224)),  # square
        ((259, 400), 259, (224, 224)),  # left margin 17.5 rounds up
        ((301, 499), 257, (224, 224)),  # odd sizes, odd margins
        ((1000, 151), 256, (225, 223)),  # a window that is not square, odd on both sides
        ((7, 2000), 32, (28, 28)),  # a strip
    ],
)
def test_resize_crop_geometry_is_torchvisions_resize_then_centre_crop(size, short_side, crop):
    (new_w, new_h), (left, top) = resize_crop_geometry(size, short_side, crop)
    assert TF.resize(Image.new("L", size), [short_side]).size == (new_w, new_h)
    positions = torch.arange(new_h * new_w).reshape(1, new_h, new_w)  # each pixel holds its own index
    window = TF.center_crop(positions, [crop[1], crop[0]])
    assert tuple(window.shape[-2:]) == (crop[1], crop[0])
    assert int(window[0, 0, 0]) == top * new_w + left, "the window's top-left pixel is not at (left, top)"


def test_resize_crop_geometry_refuses_what_is_not_a_size():
    with pytest.raises(TypeError, match="size must be a pair"):
        resize_crop_geometry(640, 256, (224, 224))
    with pytest.raises(ValueError, match="crop's height must be at least 1"):
        resize_crop_geometry((640, 480), 256, (224, 0))


# --- extreme aspect ratios: crop before resizing ------------------------------------------------


@pytest.mark.parametrize("name", ["cat", "coffee", "squirrel", "fruits"])
def test_cropping_first_matches_the_plain_transform_on_ordinary_photos(name):
    """The crop-first path (used for thin strips) gives the plain transform's tensor within one grey level."""
    picture = load_image(sample_image_path(name))
    transforms = vgg_transforms()
    region, rest = _crop_first(picture, transforms)
    assert region.size == (224, 224)
    one_grey_level = 1 / 255 / min(transforms.std)
    assert (rest(region) - transforms(picture)).abs().max() <= one_grey_level + 1e-6


@pytest.mark.parametrize("size", [(1000, 150), (150, 1000), (2000, 7)], ids=["wide", "tall", "strip"])
def test_long_images_are_cropped_first_and_match_torchvision_within_one_grey_level(size):
    rng = np.random.default_rng(sum(size))
    picture = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    transforms = vgg_transforms()
    if size == (2000, 7):  # the strip, 7 pixels high, is upscaled 37x: the learner is told
        with pytest.warns(UserWarning, match=r"^The image is only 2000x7 pixels; resizing it to 256 upscales it 37x"):
            ours = preprocess_imagenet_image(picture, transforms)[0]
    else:
        ours = preprocess_imagenet_image(picture, transforms)[0]
    assert (ours - transforms(picture)).abs().max() <= 1 / 255 / min(transforms.std) + 1e-6


def test_a_thin_strip_gives_its_colour(recwarn):
    strip = Image.new("RGB", (20000, 1), (10, 200, 30))
    picture = deprocess_imagenet_image(preprocess_imagenet_image(strip))
    assert picture.shape == (224, 224, 3)
    assert np.allclose(picture, np.array([10, 200, 30]) / 255, atol=1e-6)
    assert any("upscales it" in str(w.message) for w in recwarn)


# --- hostile input, second round (issue 20) -----------------------------------------------------------


def test_transforms_that_are_not_a_function_are_named_in_one_line() -> None:
    with pytest.raises(TypeError, match=r"transforms must be the model's preprocessing, .*; not 42\.") as raised:
        preprocess_imagenet_image(Image.new("RGB", (8, 8)), transforms=42)  # type: ignore[arg-type]
    assert "\n" not in str(raised.value) and "not callable" not in str(raised.value)


def test_an_in_memory_premultiplied_la_image_loads_as_its_straight_alpha_copy() -> None:
    picture = load_image(Image.new("La", (4, 4), (100, 128)))  # grey 100 premultiplied by alpha 128/255: grey ~200
    assert picture.mode == "RGB" and picture.getpixel((0, 0)) == (227, 227, 227)  # half of it over white


def test_an_in_memory_image_pil_cannot_convert_is_not_called_a_damaged_file(monkeypatch: pytest.MonkeyPatch) -> None:
    import utils.datasets as datasets_module

    def refusing(image: Image.Image, name: str) -> Image.Image:
        raise ValueError("conversion from XYZ to RGB not supported")

    monkeypatch.setattr(datasets_module, "_to_rgb", refusing)
    with pytest.raises(ImageLoadError, match=r"PIL cannot convert it to RGB \(conversion from XYZ") as raised:
        load_image(Image.new("RGB", (4, 4)))
    assert "damaged" not in str(raised.value) and "re-download" not in str(raised.value)
    assert "\n" not in str(raised.value)
