"""utils.datasets, value by value: each refusal's whole line, the limits at their edges, the pixels of odd sources.

tests/test_datasets.py checks loading and preprocessing against PIL and torchvision, often by a word of the message;
these pin what its mutants used to change unnoticed: the rest of each message, where a limit starts, which sources
are decoded at reduced scale, and the rounding of pixel values.
"""

from __future__ import annotations

import io
import re
import sys
import warnings

import numpy as np
import pytest
import torch
from _shared import refuses
from PIL import Image
from torchvision.models import VGG16_Weights
from torchvision.transforms._presets import ImageClassification

import utils.datasets as datasets
from utils.datasets import (
    ImageLoadError,
    _crop_first,
    _draft_size,
    decode_image,
    deprocess_imagenet_image,
    load_image,
    preprocess_imagenet_image,
    resize_crop_geometry,
    sample_image_path,
    two_class_image,
)


def png_bytes(size: tuple[int, int] = (4, 3), mode: str = "RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


def rgb(image: Image.Image) -> list:
    assert image.mode == "RGB"
    return np.asarray(image).tolist()


# --- sample images ---------------------------------------------------------------------------------


def test_a_missing_sample_photo_and_a_name_that_is_not_text(tmp_path, monkeypatch) -> None:
    with refuses(ValueError, "Unknown sample image 3; valid names: cat, coffee, squirrel, fruits."):
        sample_image_path(3)
    monkeypatch.setattr(datasets, "DATA_DIR", tmp_path)
    with refuses(
        FileNotFoundError,
        f"Sample image {tmp_path / 'cat.png'} is missing; it ships in the course repository's data/ folder.",
    ):
        sample_image_path("cat")


# --- load_image: what is refused, in whole lines --------------------------------------------------------


def test_min_side_and_source_type_refusals() -> None:
    with refuses(ValueError, "min_side must be a positive number of pixels or None, got 0."):
        load_image(np.zeros((2, 2), np.uint8), min_side=0)
    assert load_image(np.zeros((2, 2), np.uint8), min_side=1).size == (2, 2)
    with refuses(
        TypeError,
        "Cannot load an image from a float; pass a path, the file's bytes, a PIL image, an array or a tensor.",
    ):
        load_image(3.5)


def test_bytes_are_named_by_their_count_and_read_in_any_buffer() -> None:
    with refuses(
        ImageLoadError, "Cannot load image 'bytes (5 of them)': it is not an image PIL can read (PNG, JPEG, ...)."
    ):
        load_image(b"hello")
    content = png_bytes()
    for source in (content, bytearray(content), memoryview(content)):
        assert load_image(source).size == (4, 3)
    with refuses(ImageLoadError, "Cannot load image 'bytes (0 of them)': the file is empty."):
        load_image(memoryview(b""))


def test_an_in_memory_image_pil_cannot_convert_is_named_by_mode_and_size(monkeypatch) -> None:
    reasons = iter([ValueError("conversion from XYZ to RGB not supported."), OSError()])

    def refusing(image: Image.Image, name: str) -> Image.Image:
        raise next(reasons)

    monkeypatch.setattr(datasets, "_to_rgb", refusing)
    with refuses(
        ImageLoadError,
        "Cannot load image PIL image (L, 5x4): PIL cannot convert it to RGB (conversion from XYZ to RGB not "
        "supported); convert it first, e.g. image.convert('RGBA') or image.convert('RGB').",
    ):
        load_image(Image.new("L", (5, 4)))
    with pytest.raises(ImageLoadError, match=r"^Cannot load image PIL image \(RGB, 2x2\): .* \(OSError\); convert"):
        load_image(Image.new("RGB", (2, 2)))


def test_an_opened_file_that_cannot_be_decoded_is_named_by_its_file(tmp_path) -> None:
    data = png_bytes((64, 64))
    path = tmp_path / "half.png"
    path.write_bytes(data[: len(data) - 30])
    with Image.open(path) as opened, pytest.raises(ImageLoadError) as caught:
        load_image(opened)
    message = str(caught.value)
    assert message.startswith(f"Cannot load image '{path}': PIL cannot decode it (")
    assert message.endswith("); the file may be damaged: re-download or re-export it.")


def test_a_truncated_file_is_one_line_about_the_file(tmp_path) -> None:
    data = png_bytes((64, 64))
    path = tmp_path / "half.png"
    path.write_bytes(data[: len(data) - 30])
    with pytest.raises(ImageLoadError) as caught:
        load_image(path)
    assert re.fullmatch(
        rf"Cannot load image '{re.escape(str(path))}': PIL cannot decode it \([^()]*(\([^()]*\))?[^()]*\); "
        r"the file may be damaged: re-download or re-export it\.",
        str(caught.value),
    ), str(caught.value)
    assert str(caught.value).count("Cannot load image") == 1


@pytest.mark.parametrize(
    ("shape", "dtype", "message"),
    [
        ((3, 2, 2), torch.complex64, "pixel type torch.complex64 is not supported; use uint8 or float."),
        ((1, 3, 2, 2), torch.float32, "it is a batch; pass one image, e.g. image[0]."),
        ((2, 2, 2), torch.float32, "tensors are channels first (C x H x W, C = 1, 3 or 4)."),
        ((2, 2), torch.bool, "pixel type bool is not supported; use uint8 or float."),
    ],
)
def test_tensors_that_are_not_pictures_are_refused_in_one_line(shape, dtype, message) -> None:
    with refuses(ImageLoadError, f"Cannot load image tensor of shape {shape}: {message}"):
        load_image(torch.zeros(shape, dtype=dtype))


def test_tensors_of_every_float_type_and_layout_load() -> None:
    values = torch.tensor([[0.0, 0.5, 1.0]])
    expected = [[[0, 0, 0], [128, 128, 128], [255, 255, 255]]]  # 127.5 rounds to even: 128
    for tensor in (values, values.to(torch.bfloat16), values.double(), values.to_sparse(), values.requires_grad_()):
        assert rgb(load_image(tensor)) == expected
    assert rgb(load_image(torch.tensor([[[0, 255]], [[255, 0]], [[7, 7]]], dtype=torch.uint8))) == [
        [[0, 255, 7], [255, 0, 7]]
    ]


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((3, 8, 8)), "arrays are channels last (H x W x C); use np.moveaxis(image, 0, -1)."),
        (np.zeros((4, 4, 2)), "expected H x W or H x W x C with C = 1, 3 or 4."),
        (np.zeros((0, 3)), "expected H x W or H x W x C with C = 1, 3 or 4."),
        (np.zeros((2, 2), dtype=complex), "pixel type complex128 is not supported; use uint8 or float."),
        (np.array([[0.5, np.inf]]), "it contains NaN or infinite values."),
        (
            np.full((2, 2, 3), 1.5),
            "float pixels must lie in [0, 1], these span [1.5, 1.5]; for a normalised model input use "
            "deprocess_imagenet_image.",
        ),
        (np.array([[-0.25, 0.5]]), "float pixels must lie in [0, 1], these span [-0.25, 0.5]"),
        (
            np.array([[-3, 300]]),
            "integer pixels must lie in 0-255, these span -3-300; convert to uint8 or to floats in [0, 1].",
        ),
        (np.array([[0, 300]], dtype=np.int16), "integer pixels must lie in 0-255, these span 0-300"),
        (np.array([[0, 65535]], dtype=np.uint32), "integer pixels must lie in 0-255, these span 0-65535"),
    ],
)
def test_arrays_that_are_not_pictures_are_refused_in_one_line(array, message) -> None:
    with pytest.raises(ImageLoadError) as caught:
        load_image(array)
    expected = f"Cannot load image array of shape {array.shape}: {message}"
    assert str(caught.value) == expected or (
        not message.endswith(".") and str(caught.value).startswith(expected + ";")
    ), str(caught.value)


def test_float_pixels_within_rounding_error_of_the_range_are_clipped() -> None:
    assert rgb(load_image(np.array([[-0.0001, 1.0001]]))) == [[[0, 0, 0], [255, 255, 255]]]
    with pytest.raises(ImageLoadError, match=r"these span \[0, 1\]; "):  # 3 digits: 1.0002 shows as 1
        load_image(np.array([[0.0, 1.0002]]))
    with pytest.raises(ImageLoadError, match=r"these span \[-0\.0002, 1\]"):
        load_image(np.array([[-0.0002, 1.0]]))
    assert rgb(load_image(np.array([[0, 255]], dtype=np.int16))) == [[[0, 0, 0], [255, 255, 255]]]
    assert rgb(load_image(np.array([[2 / 255 * 0.75, 0.5]]))) == [[[2, 2, 2], [128, 128, 128]]]  # rounded


def test_a_channels_first_looking_array_with_four_last_channels_is_rgba() -> None:
    array = np.zeros((3, 5, 4), dtype=np.uint8)
    array[..., 3] = 255  # opaque black
    assert load_image(array).size == (5, 3) and rgb(load_image(array))[0][0] == [0, 0, 0]
    one = np.zeros((1, 6, 8))
    with pytest.raises(ImageLoadError, match=r"arrays are channels last"):
        load_image(one)


def test_a_uint8_array_is_copied_before_pil_sees_it() -> None:
    array = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    picture = load_image(array)
    array[:] = 0
    assert rgb(picture) == np.arange(12).reshape(2, 2, 3).tolist()
    strided = np.arange(24, dtype=np.uint8).reshape(2, 4, 3)[:, ::2]  # not contiguous
    assert rgb(load_image(strided)) == strided.tolist()


def test_a_float_image_of_mode_f_is_read_as_floats_in_0_1() -> None:
    picture = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32))
    assert picture.mode == "F"
    assert rgb(load_image(picture)) == [[[0, 0, 0], [128, 128, 128], [255, 255, 255]]]


def test_a_32_bit_tiff_out_of_range_is_one_whole_line(tmp_path) -> None:
    path = tmp_path / "deep.tif"
    Image.fromarray(np.array([[-5, 100_000]], dtype=np.int32)).save(path)
    with refuses(
        ImageLoadError,
        f"Cannot load image '{path}': 32-bit integer pixels (PIL mode 'I') are read as 16-bit and must lie in "
        "0-65535, these span -5-100000; save the image with 8 or 16 bits per channel.",
    ):
        load_image(path)
    Image.fromarray(np.array([[0, 65535]], dtype=np.int32)).save(path)
    assert rgb(load_image(path)) == [[[0, 0, 0], [255, 255, 255]]]  # mode I within 16 bits: scaled as 16-bit


# --- load_image: paths --------------------------------------------------------------------------------


def test_path_refusals_are_whole_lines(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with refuses(
        ImageLoadError,
        f"Cannot load image 'photos/cat.jpg': no such file; check the path (relative paths start at {tmp_path}).",
    ):
        load_image("photos/cat.jpg")
    with refuses(ImageLoadError, f"Cannot load image '{tmp_path / 'no.png'}': no such file; check the path."):
        load_image(tmp_path / "no.png")
    with refuses(ImageLoadError, f"Cannot load image '{tmp_path}': it is a directory; pass an image file inside it."):
        load_image(tmp_path)
    (tmp_path / "notes").write_text("not an image")
    with refuses(
        ImageLoadError,
        f"Cannot load image '{tmp_path / 'notes'}': PIL cannot read it as an image; is it really a image file?",
    ):
        load_image(tmp_path / "notes")
    (tmp_path / "notes.jpg").write_text("not an image")
    with refuses(
        ImageLoadError,
        "Cannot load image 'notes.jpg': PIL cannot read it as an image; is it really a .jpg file?",
    ):
        load_image("notes.jpg")


def test_links_that_lead_nowhere_are_whole_lines(tmp_path) -> None:
    loop_a, loop_b, dangling = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "gone.png"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    dangling.symlink_to(tmp_path / "missing.png")
    fix = "point the link at an image, or pass the file itself."
    with refuses(ImageLoadError, f"Cannot load image '{loop_a}': it is a loop of symbolic links; {fix}"):
        load_image(loop_a)
    with refuses(ImageLoadError, f"Cannot load image '{dangling}': it is a symbolic link to a missing file; {fix}"):
        load_image(dangling)
    Image.new("RGB", (3, 2)).save(tmp_path / "real.png")
    (tmp_path / "link.png").symlink_to(tmp_path / "real.png")
    assert load_image(tmp_path / "link.png").size == (3, 2)


def test_a_url_is_refused_whole_and_a_scheme_needs_its_slashes(tmp_path, monkeypatch) -> None:
    with refuses(
        ImageLoadError,
        "Cannot load image 'ftp+x.1://example.org/cat.png': it is a URL, and nothing is downloaded here; download it "
        "first (e.g. urllib.request.urlretrieve(url, 'photo.jpg')) and pass the file's path.",
    ):
        load_image("ftp+x.1://example.org/cat.png")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c:").mkdir()
    Image.new("RGB", (3, 2)).save(tmp_path / "c:" / "cat.png")
    assert load_image("c:/cat.png").size == (3, 2)  # a name with a colon, no '//': a path
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image("1http://cat.png")  # a scheme starts with a letter


def test_the_decompression_bomb_limit_is_one_whole_line(tmp_path, monkeypatch) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (20, 20)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageLoadError) as caught:
        load_image(path)
    assert re.fullmatch(
        rf"Cannot load image '{re.escape(str(path))}': it is over PIL's decompression-bomb limit \(Image size "
        r"\(400 pixels\) exceeds limit of 200 pixels, could be decompression bomb DOS attack\); downscale it, or "
        r"raise PIL\.Image\.MAX_IMAGE_PIXELS if you trust the file\.",
        str(caught.value),
    ), str(caught.value)


@pytest.mark.parametrize(
    ("error", "shown"), [(PermissionError(13, "Permission denied"), "Permission denied"), (OSError("busy"), "busy")]
)
def test_a_file_that_cannot_be_opened_names_the_reason(tmp_path, monkeypatch, error, shown) -> None:
    path = tmp_path / "locked.png"
    Image.new("RGB", (2, 2)).save(path)

    def refusing(*args: object, **kwargs: object) -> Image.Image:
        raise error

    monkeypatch.setattr(datasets.Image, "open", refusing)
    with refuses(ImageLoadError, f"Cannot load image '{path}': {shown}."):
        load_image(path)


def test_a_header_that_breaks_while_opening_is_one_whole_line(tmp_path, monkeypatch) -> None:
    path = tmp_path / "odd.png"
    Image.new("RGB", (2, 2)).save(path)
    for error, reason in ((SyntaxError("bad header."), "bad header"), (EOFError(), "EOFError")):

        def refusing(*args: object, error: BaseException = error, **kwargs: object) -> Image.Image:
            raise error

        monkeypatch.setattr(datasets.Image, "open", refusing)
        with refuses(
            ImageLoadError,
            f"Cannot load image '{path}': PIL cannot decode it ({reason}); the file may be damaged: re-download or "
            "re-export it.",
        ):
            load_image(path)


# --- decode_image -------------------------------------------------------------------------------------


def test_decode_image_limits_hold_at_their_edges() -> None:
    content = png_bytes((4, 3))
    assert decode_image(content, "a.png", max_bytes=len(content), max_pixels=12).size == (4, 3)
    with refuses(
        ImageLoadError,
        f"Cannot load image 'a.png': it is {len(content) / 1e6:.1f} MB, over the limit of 0 MB; downscale it first.",
    ):
        decode_image(content, "a.png", max_bytes=len(content) - 1)
    with refuses(
        ImageLoadError, "Cannot load image 'a.png': 4x3 pixels is over the limit of 0 megapixels; downscale it first."
    ):
        decode_image(content, "a.png", max_pixels=11)
    with refuses(TypeError, "content must be the file's bytes (bytes or memoryview), not str."):
        decode_image("a.png")
    with refuses(ValueError, "max_bytes must be at least 1, got 0."):
        decode_image(content, max_bytes=0)
    with refuses(ValueError, "max_pixels must be at least 1, got 0."):
        decode_image(content, max_pixels=0)
    with refuses(ValueError, "min_side must be at least 1, got 0."):
        decode_image(content, min_side=0)
    with refuses(ImageLoadError, "Cannot load image '3': the file is empty."):
        decode_image(b"", 3)


def test_decode_image_leaves_the_pixel_limit_to_max_pixels(monkeypatch) -> None:
    content = png_bytes((20, 20))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # 400 pixels: PIL warns, below twice its limit
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert decode_image(content, "a.png", max_pixels=400).size == (20, 20)
        with pytest.raises(Image.DecompressionBombWarning):
            decode_image(content, "a.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with refuses(ImageLoadError, "Cannot load image 'a.png': it has far too many pixels; downscale it first."):
        decode_image(content, "a.png")


def test_decode_image_names_a_header_error_while_opening(monkeypatch) -> None:
    def refusing(*args: object, **kwargs: object) -> Image.Image:
        raise SyntaxError("not a PNG file.")

    monkeypatch.setattr(datasets.Image, "open", refusing)
    with refuses(
        ImageLoadError,
        "Cannot load image 'a.png': PIL cannot decode it (not a PNG file); the file may be damaged: re-download or "
        "re-export it.",
    ):
        decode_image(b"abc", "a.png")


def jpeg_bytes(size: tuple[int, int]) -> bytes:
    rng = np.random.default_rng(0)
    small = Image.fromarray((rng.random((8, 12, 3)) * 255).astype(np.uint8))
    buffer = io.BytesIO()
    small.resize(size, Image.Resampling.BILINEAR).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def test_decode_image_drafts_only_jpegs_and_only_when_asked() -> None:
    jpeg = jpeg_bytes((1200, 800))
    assert decode_image(jpeg).size == (1200, 800)
    assert decode_image(jpeg, min_side=200).size == (300, 200)  # 1/4 scale keeps the shorter side >= 200
    assert load_image(jpeg, min_side=200).size == (300, 200)
    png = png_bytes((1200, 800))
    assert decode_image(png, min_side=200).size == (1200, 800)


def test_draft_sizes_round_up() -> None:
    assert _draft_size((6000, 4000), 512) == (768, 512)
    assert _draft_size((4000, 6000), 512) == (512, 768)
    assert _draft_size((1001, 1000), 10) == (11, 10)


# --- preprocessing ------------------------------------------------------------------------------------


def test_only_a_jpeg_path_is_decoded_at_reduced_scale(tmp_path) -> None:
    jpeg = jpeg_bytes((2400, 1600))
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg)
    transforms = VGG16_Weights.IMAGENET1K_V1.transforms()
    full = transforms(load_image(jpeg)).unsqueeze(0)
    assert torch.equal(preprocess_imagenet_image(jpeg), full)  # bytes: decoded at full size
    with Image.open(path) as opened:
        assert torch.equal(preprocess_imagenet_image(opened), full)
    drafted = transforms(load_image(path, min_side=512)).unsqueeze(0)  # twice the resize: 1/2 scale
    assert load_image(path, min_side=512).size == (1200, 800)
    assert torch.equal(preprocess_imagenet_image(path), drafted) and not torch.equal(drafted, full)


def test_the_upscale_warning_starts_past_four_times(recwarn) -> None:
    preprocess_imagenet_image(np.zeros((64, 64, 3)))  # 64 x 4 = 256: not past it
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
    with pytest.warns(UserWarning) as caught:
        preprocess_imagenet_image(np.zeros((63, 70, 3)))
    warned = [w for w in caught if issubclass(w.category, UserWarning)]
    assert [str(w.message) for w in warned] == [
        "The image is only 70x63 pixels; resizing it to 256 upscales it 4x, so the model sees a blur."
    ]
    if "mutmut" not in sys.modules:  # mutmut's trampolines put frames of their own between the caller and here
        assert warned[0].filename == __file__


def test_a_transform_without_a_resize_never_warns_nor_drafts(recwarn) -> None:
    def plain(picture: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(picture).copy()).permute(2, 0, 1).float()

    assert preprocess_imagenet_image(np.zeros((4, 4, 3)), plain).shape == (1, 3, 4, 4)

    class Listed:
        resize_size: list[int] = []  # says nothing about the resize

        def __call__(self, picture: Image.Image) -> torch.Tensor:
            return plain(picture)

    assert preprocess_imagenet_image(np.zeros((8, 8, 3)), Listed()).shape == (1, 3, 8, 8)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_cropping_first_starts_past_four_to_one_and_only_when_keeping_aspect() -> None:
    transforms = VGG16_Weights.IMAGENET1K_V1.transforms()
    rng = np.random.default_rng(5)
    four = Image.fromarray(rng.integers(0, 256, (100, 400, 3), dtype=np.uint8))  # exactly 4:1: the plain transform
    assert torch.equal(preprocess_imagenet_image(four, transforms)[0], transforms(four))
    longer = Image.fromarray(rng.integers(0, 256, (100, 401, 3), dtype=np.uint8))
    region, rest = _crop_first(longer, transforms)
    assert torch.equal(preprocess_imagenet_image(longer, transforms)[0], rest(region))
    squash = ImageClassification(crop_size=224, resize_size=224)
    squash.resize_size = [224, 224]  # the whole picture to 224 x 224
    assert torch.equal(preprocess_imagenet_image(longer, transforms, keep_aspect=False)[0], squash(longer))


def test_crop_first_leaves_other_transforms_alone() -> None:
    picture = Image.new("RGB", (1000, 100))
    base = VGG16_Weights.IMAGENET1K_V1.transforms()
    two_sides = ImageClassification(crop_size=224, resize_size=256)
    two_sides.resize_size = [256, 256]
    no_crop = ImageClassification(crop_size=224, resize_size=256)
    no_crop.crop_size = []
    small = ImageClassification(crop_size=224, resize_size=200)  # a resize below the crop: torchvision pads
    odd = ImageClassification(crop_size=224, resize_size=256)
    odd.interpolation = "lanczos"
    for transforms in (two_sides, no_crop, small, odd, lambda p: p):
        assert _crop_first(picture, transforms) == (picture, transforms)
    region, rest = _crop_first(picture, base)
    assert region.size == (224, 224) and (rest.resize_size, rest.crop_size) == ([224, 224], [224])
    equal = ImageClassification(crop_size=224, resize_size=224)
    assert _crop_first(picture, equal)[0].size == (224, 224)  # a resize as large as the crop is taken


def test_preprocess_refusals_are_whole_lines() -> None:
    with refuses(
        ValueError,
        "keep_aspect=False needs a torchvision ImageClassification transform (with crop_size and resize_size), "
        "not function; pass keep_aspect=True.",
    ):
        preprocess_imagenet_image(np.zeros((8, 8)), lambda p: p, keep_aspect=False)

    class CropOnly:
        crop_size = [4]

        def __call__(self, picture: Image.Image) -> torch.Tensor:
            return torch.zeros(3, 4, 4)

    with pytest.raises(ValueError, match=r"not CropOnly; pass keep_aspect=True\.$"):
        preprocess_imagenet_image(np.zeros((8, 8)), CropOnly(), keep_aspect=False)
    with refuses(TypeError, "transforms must turn a PIL image into a C x H x W tensor; it returned Tensor."):
        preprocess_imagenet_image(np.zeros((8, 8)), lambda p: torch.zeros(1, 3, 4, 4))
    with refuses(
        TypeError,
        "transforms must be the model's preprocessing, a function from a PIL image to a tensor (e.g. "
        "loaded.transforms), or None for VGG16's; not 42.",
    ):
        preprocess_imagenet_image(np.zeros((8, 8)), 42)
    with refuses(TypeError, "keep_aspect must be True or False, not 1."):
        preprocess_imagenet_image(np.zeros((8, 8)), keep_aspect=1)
    with refuses(
        ValueError,
        "device 'gpu' is not a torch device; use 'cpu', 'cuda' or 'mps' (utils.models.choose_device picks one).",
    ):
        preprocess_imagenet_image(np.zeros((8, 8)), device="gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_missing_device_is_one_whole_line() -> None:
    with pytest.raises(ValueError) as caught:
        preprocess_imagenet_image(np.zeros((64, 64, 3)), device=torch.device("cuda"))
    assert re.fullmatch(
        r"device device\(type='cuda'\) is not available here \([^\n]*[^.]\); use utils\.models\.choose_device\(\) "
        r"or 'cpu'\.",
        str(caught.value),
    ), str(caught.value)


def test_a_squashed_transform_is_a_copy_resized_to_its_crop() -> None:
    transforms = ImageClassification(crop_size=6, resize_size=10)
    picture = np.random.default_rng(0).integers(0, 256, (12, 30, 3), dtype=np.uint8)
    squashed = preprocess_imagenet_image(picture, transforms, keep_aspect=False)
    squash = ImageClassification(crop_size=6, resize_size=6)
    squash.resize_size = [6, 6]
    expected = squash(load_image(picture))
    assert torch.equal(squashed[0], expected) and transforms.resize_size == [10]


# --- deprocessing -------------------------------------------------------------------------------------


def test_deprocess_refusals_are_whole_lines() -> None:
    with refuses(
        ValueError, "transforms must have mean and std (as torchvision's ImageClassification has), not function."
    ):
        deprocess_imagenet_image(torch.zeros(3, 2, 2), lambda p: p)
    with refuses(TypeError, "Expected a torch tensor (the model input), not ndarray."):
        deprocess_imagenet_image(np.zeros((3, 2, 2)))
    with refuses(TypeError, "Expected a real-valued model input, got a torch.complex64 tensor."):
        deprocess_imagenet_image(torch.zeros(3, 2, 2, dtype=torch.complex64))
    with refuses(TypeError, "Expected a real-valued model input, got a torch.bool tensor."):
        deprocess_imagenet_image(torch.zeros(3, 2, 2, dtype=torch.bool))
    with refuses(
        ValueError, "The tensor contains NaN or infinite values, so it is not a picture; check the model input."
    ):
        deprocess_imagenet_image(torch.full((3, 2, 2), float("nan")))
    with refuses(ValueError, "Expected a model input of shape 1 x 3 x H x W or 3 x H x W, got (2, 3, 4, 4)."):
        deprocess_imagenet_image(torch.zeros(2, 3, 4, 4))
    with refuses(ValueError, "Expected a model input of shape 1 x 3 x H x W or 3 x H x W, got (1, 4, 4, 4)."):
        deprocess_imagenet_image(torch.zeros(1, 4, 4, 4))


def test_deprocess_computes_in_float64() -> None:
    x = torch.randn(3, 16, 16, generator=torch.Generator().manual_seed(0)) * 0.1
    transforms = VGG16_Weights.IMAGENET1K_V1.transforms()
    mean = np.array(transforms.mean)[:, None, None]
    std = np.array(transforms.std)[:, None, None]
    expected = np.clip(x.numpy().astype(np.float64) * std + mean, 0, 1).transpose(1, 2, 0).astype(np.float32)
    picture = deprocess_imagenet_image(x.half())
    assert np.array_equal(deprocess_imagenet_image(x), expected)
    assert picture.dtype == np.float32 and np.abs(picture - expected).max() < 1e-3


# --- resize_crop_geometry and two_class_image ---------------------------------------------------------


def test_geometry_refusals_are_whole_lines() -> None:
    with refuses(TypeError, "size must be a pair (width, height) of whole numbers of pixels, not 640."):
        resize_crop_geometry(640, 256, (224, 224))
    with refuses(TypeError, "crop must be a pair (width, height) of whole numbers of pixels, not (224, 224, 1)."):
        resize_crop_geometry((640, 480), 256, (224, 224, 1))
    with refuses(ValueError, "size's width must be at least 1, got 0."):
        resize_crop_geometry((0, 480), 256, (224, 224))
    with refuses(ValueError, "short_side must be at least 1, got 0."):
        resize_crop_geometry((640, 480), 0, (224, 224))
    assert resize_crop_geometry([640, 480], 256, [224, 224]) == ((341, 256), (58, 16))


def test_two_class_image_refusals_are_whole_lines() -> None:
    photo = np.zeros((30, 40, 3))
    for size, shown in ((True, "True"), (1, "1"), ("224", "'224'")):
        with refuses(
            ValueError, f"size must be a whole number of pixels, at least 2 (224 for the course's models), got {shown}."
        ):
            two_class_image(photo, photo, size=size)
    with refuses(ValueError, "crop_at must be a pair (left photo, right photo) of positions in [0, 1], got (0.5,)."):
        two_class_image(photo, photo, crop_at=(0.5,))
    with refuses(ValueError, "crop_at for the right photo must lie in [0, 1] (0.5 = centred), got 1.5."):
        two_class_image(photo, photo, crop_at=[0.0, 1.5])
    pair = two_class_image(photo, photo, size=np.int64(2), crop_at=(0, 1))
    assert pair.image.size == (2, 2) and pair.masks[0].tolist() == [[True, False], [True, False]]


def test_each_half_is_cut_at_its_own_position() -> None:
    ramp = np.tile(np.linspace(0, 255, 400).round().astype(np.uint8)[None, :, None], (100, 1, 3))
    left_edge = np.asarray(two_class_image(ramp, ramp, size=100, crop_at=(0.0, 1.0)).image)[:, :, 0]
    assert left_edge[:, :50].max() < 40 and left_edge[:, 50:].min() > 215  # window at the left, then at the right
    both = np.asarray(two_class_image(ramp, ramp, size=100, crop_at=(1.0, 0.0)).image)[:, :, 0]
    assert both[:, :50].min() > 215 and both[:, 50:].max() < 40


def test_an_odd_size_puts_the_right_photo_right_after_the_left_one() -> None:
    black, white = np.zeros((30, 40, 3), np.uint8), np.full((30, 40, 3), 255, np.uint8)
    pair = two_class_image(black, white, size=3)
    assert np.asarray(pair.image)[:, :, 0].tolist() == [[0, 255, 255]] * 3


def test_each_window_is_resized_bilinearly() -> None:
    photo = np.random.default_rng(3).integers(0, 256, (200, 800, 3), dtype=np.uint8)  # twice the half's size
    pair = np.asarray(two_class_image(photo, photo, size=100, crop_at=(0.0, 0.5)).image)
    picture = Image.fromarray(photo)
    left = picture.resize((50, 100), Image.Resampling.BILINEAR, box=(0, 0, 100, 200))
    right = picture.resize((50, 100), Image.Resampling.BILINEAR, box=(350, 0, 450, 200))
    assert np.array_equal(pair[:, :50], np.asarray(left)) and np.array_equal(pair[:, 50:], np.asarray(right))


def test_bytes_without_a_name_are_called_image_bytes() -> None:
    with refuses(ImageLoadError, "Cannot load image 'image bytes': it is not an image PIL can read (PNG, JPEG, ...)."):
        decode_image(b"hello")


def test_one_and_four_channel_tensors_are_grey_and_rgba() -> None:
    grey = torch.tensor([[[0.0, 1.0]]])  # 1 x 1 x 2
    assert rgb(load_image(grey)) == [[[0, 0, 0], [255, 255, 255]]]
    rgba = torch.zeros(4, 1, 2)
    rgba[3, 0, 1] = 1.0  # the first pixel transparent (white), the second opaque black
    assert rgb(load_image(rgba)) == [[[255, 255, 255], [0, 0, 0]]]
    with refuses(
        ImageLoadError,
        "Cannot load image tensor of shape (5, 1, 2): tensors are channels first (C x H x W, C = 1, 3 or 4).",
    ):
        load_image(torch.zeros(5, 1, 2))


def test_deprocess_needs_both_mean_and_std_and_clips_below_zero() -> None:
    class MeanOnly:
        mean = (0.0, 0.0, 0.0)

    with refuses(
        ValueError, "transforms must have mean and std (as torchvision's ImageClassification has), not MeanOnly."
    ):
        deprocess_imagenet_image(torch.zeros(3, 2, 2), MeanOnly())
    picture = deprocess_imagenet_image(torch.tensor([-10.0, 0.0, 10.0]).view(3, 1, 1).expand(3, 1, 2))
    assert picture.tolist() == [[[0.0, 0.4560000002384186, 1.0], [0.0, 0.4560000002384186, 1.0]]]


def test_a_crop_position_that_is_not_a_number_is_named_by_side() -> None:
    photo = np.zeros((30, 40, 3))
    with refuses(TypeError, "crop_at for the left photo must be a number, not 'a'."):
        two_class_image(photo, photo, crop_at=("a", 0.5))


def test_sizes_in_messages_are_megabytes_and_megapixels_of_a_million() -> None:
    with refuses(
        ImageLoadError, "Cannot load image 'big.png': it is 1.1 MB, over the limit of 1 MB; downscale it first."
    ):
        decode_image(bytes(1_050_001), "big.png", max_bytes=1_000_000)  # 1.050001 MB shows as 1.1
    with refuses(
        ImageLoadError, "Cannot load image 'big.png': it is 1.6 MB, over the limit of 2 MB; downscale it first."
    ):
        decode_image(bytes(1_600_000), "big.png", max_bytes=1_500_000)  # 1.5 MB shows as 2
    content = png_bytes((1300, 1200), mode="L")  # 1.56 megapixels
    with refuses(
        ImageLoadError,
        "Cannot load image 'wide.png': 1300x1200 pixels is over the limit of 2 megapixels; downscale it first.",
    ):
        decode_image(content, "wide.png", max_pixels=1_500_000)


def test_decoding_failures_of_bytes_name_the_upload(tmp_path) -> None:
    data = png_bytes((64, 64))
    with pytest.raises(ImageLoadError, match=r"^Cannot load image 'cut\.png': PIL cannot decode it \("):
        decode_image(data[: len(data) - 30], "cut.png")
    buffer = io.BytesIO()
    Image.fromarray(np.array([[0, 100_000]], dtype=np.int32)).save(buffer, format="TIFF")
    with pytest.raises(ImageLoadError, match=r"^Cannot load image 'deep\.tif': 32-bit integer pixels"):
        decode_image(buffer.getvalue(), "deep.tif")


def test_only_the_decompression_bomb_warning_is_silenced(monkeypatch) -> None:
    content = png_bytes((4, 3))
    real_open = Image.open

    def noisy(*args: object, **kwargs: object) -> Image.Image:
        warnings.warn("a note from the decoder", RuntimeWarning, stacklevel=2)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(datasets.Image, "open", noisy)
    with pytest.warns(RuntimeWarning, match="a note from the decoder"):
        assert decode_image(content, "a.png", max_pixels=100).size == (4, 3)


def test_a_reason_ending_in_a_letter_keeps_it() -> None:
    assert datasets._undecodable("'a.png'", SyntaxError("unknown mode XX.")) == (
        "Cannot load image 'a.png': PIL cannot decode it (unknown mode XX); the file may be damaged: re-download or "
        "re-export it."
    )
