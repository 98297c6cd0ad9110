"""Photo read/write: orientation, modes, no metadata out, formats, paths, atomicity, bad files."""

import os

import numpy as np
import pytest
from PIL import Image, ImageCms

from vdeid.errors import InputError, OutputError, VdeidError
from vdeid.io.images import IMAGE_SUFFIXES, output_path_for, read_icc_profile, read_image, write_image


# ImageWidth, ImageLength, BitsPerSample, Compression, Photometric, StripOffsets,
# SamplesPerPixel, RowsPerStrip, StripByteCounts, PlanarConfiguration, Predictor, ExtraSamples
TIFF_LAYOUT_TAGS = {256, 257, 258, 259, 262, 273, 277, 278, 279, 284, 317, 338}


def _quadrants(h=40, w=60):
    """Four flat colour quadrants: survive JPEG and show any rotation."""
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 2, : w // 2] = (255, 0, 0)
    img[: h // 2, w // 2 :] = (0, 255, 0)
    img[h // 2 :, : w // 2] = (0, 0, 255)
    img[h // 2 :, w // 2 :] = (255, 255, 255)
    return img


def _exif_with_gps():
    exif = Image.Exif()
    exif[0x010F] = "SecretCamMaker"  # Make
    exif[0x0110] = "SecretCamModel"  # Model
    exif[0x0112] = 1  # Orientation
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (40.0, 38.0, 12.5)
    return exif


def _close(a, b, tol=12):
    return np.abs(a.astype(int) - b.astype(int)).max() <= tol


def test_exif_orientation_is_applied(tmp_path):
    stored = _quadrants()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated; display = rotate 90 degrees clockwise
    path = tmp_path / "portrait.jpg"
    Image.fromarray(stored).save(path, quality=98, exif=exif.tobytes())
    img = read_image(path)
    assert img.shape == (60, 40, 3) and img.dtype == np.uint8
    expected = np.rot90(stored, k=-1)
    assert _close(img[5, 5], expected[5, 5]) and _close(img[5, 35], expected[5, 35])
    assert _close(img[55, 5], expected[55, 5]) and _close(img[55, 35], expected[55, 35])


def test_written_photo_has_no_metadata(tmp_path):
    src = tmp_path / "in.jpg"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(_quadrants()).save(
        src, exif=_exif_with_gps().tobytes(), icc_profile=icc, comment=b"owner: Alice"
    )
    assert Image.open(src).getexif()  # the input really has EXIF
    for fmt, name in (("same", "out.jpg"), ("png", "out.png"), ("same", "out.webp"), ("same", "out.tiff")):
        out = write_image(tmp_path / name, read_image(src), format=fmt, inputs=(src,))
        with Image.open(out) as img:
            tags = set(img.getexif())
            if img.format == "TIFF":  # a TIFF's own layout tags live in the same table
                tags -= TIFF_LAYOUT_TAGS
            assert not tags, f"{name} has EXIF tags {sorted(tags)}"
            for key in ("exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment", "gps"):
                assert key not in img.info, f"{name} has {key}"
        raw = out.read_bytes()
        for needle in (b"Exif", b"SecretCam", b"Alice", b"http://ns.adobe.com/xap"):
            assert needle not in raw, f"{name} contains {needle!r}"


def test_icc_profile_only_when_asked(tmp_path):
    src = tmp_path / "in.png"
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(_quadrants()).save(src, icc_profile=icc)
    assert read_icc_profile(src) == icc
    kept = write_image(tmp_path / "kept.jpg", read_image(src), icc_profile=read_icc_profile(src))
    assert Image.open(kept).info.get("icc_profile") == icc


@pytest.mark.parametrize(
    "name, fmt, source_suffix, expected",
    [
        ("a.png", "png", None, "PNG"),
        ("a.jpg", "jpg", None, "JPEG"),
        ("a.jpeg", "same", None, "JPEG"),
        ("a.PNG", "same", None, "PNG"),
        ("a.tif", "same", None, "TIFF"),
        ("a.bmp", "same", None, "BMP"),
        ("a.webp", "same", None, "WEBP"),
        ("a.out", "same", ".png", "PNG"),
    ],
)
def test_format_mapping(tmp_path, name, fmt, source_suffix, expected):
    out = write_image(tmp_path / name, _quadrants(), format=fmt, source_suffix=source_suffix)
    with Image.open(out) as img:
        assert img.format == expected and img.size == (60, 40) and img.mode == "RGB"


def test_unknown_suffix_and_format(tmp_path):
    with pytest.raises(OutputError, match="--image-format"):
        write_image(tmp_path / "a.xyz", _quadrants())
    with pytest.raises(VdeidError, match="png or jpg"):
        write_image(tmp_path / "a.png", _quadrants(), format="gif")
    with pytest.raises(VdeidError, match="quality"):
        write_image(tmp_path / "a.jpg", _quadrants(), quality=0)


def test_png_round_trip_is_lossless_and_uint16_is_scaled(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (31, 47, 3), dtype=np.uint8)
    np.testing.assert_array_equal(read_image(write_image(tmp_path / "a.png", img)), img)
    back = read_image(write_image(tmp_path / "b.png", img.astype(np.uint16) * 257))
    np.testing.assert_array_equal(back, img)


def test_jpeg_quality_changes_size(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    small = write_image(tmp_path / "q50.jpg", img, quality=50).stat().st_size
    large = write_image(tmp_path / "q95.jpg", img, quality=95).stat().st_size
    assert small < large


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "I;16"])
def test_modes_become_rgb8(tmp_path, mode):
    rgb = _quadrants()
    if mode == "I;16":
        grey = (np.arange(40 * 60).reshape(40, 60) * 27).astype(np.uint16)
        pil = Image.fromarray(grey)
        assert pil.mode == "I;16"
    else:
        pil = Image.fromarray(rgb).convert(mode)
    path = tmp_path / ("x.tiff" if mode == "CMYK" else "x.png")
    pil.save(path)
    img = read_image(path)
    assert img.shape == (40, 60, 3) and img.dtype == np.uint8
    if mode in ("L", "LA", "I;16"):
        assert np.all(img[..., 0] == img[..., 1]) and np.all(img[..., 1] == img[..., 2])
    if mode == "I;16":
        np.testing.assert_array_equal(img[..., 0], np.rint(grey / 257.0).astype(np.uint8))
    if mode in ("P", "RGBA", "CMYK"):
        assert _close(img, rgb, tol=3)


def test_transparency_is_flattened_onto_white(tmp_path):
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:5, :, 3] = 255  # top opaque red-ish, bottom fully transparent
    Image.fromarray(rgba).save(tmp_path / "t.png")
    img = read_image(tmp_path / "t.png")
    assert np.all(img[:5] == (200, 0, 0)) and np.all(img[5:] == 255)


def test_output_path_mirrors_the_tree(tmp_path):
    root = tmp_path / "in"
    photo = root / "2024" / "trip" / "IMG_1.JPEG"
    out = tmp_path / "out"
    assert output_path_for(photo, root, out, "same") == out / "2024" / "trip" / "IMG_1.JPEG"
    assert output_path_for(photo, root, out, "jpg") == out / "2024" / "trip" / "IMG_1.JPEG"
    assert output_path_for(photo, root, out, "png") == out / "2024" / "trip" / "IMG_1.png"
    assert output_path_for(root / "a.b.png", root, out, "jpg") == out / "a.b.jpg"
    assert output_path_for(photo, tmp_path / "elsewhere", out, "same") == out / "IMG_1.JPEG"
    assert output_path_for(photo, None, out, "same") == out / "IMG_1.JPEG"
    with pytest.raises(VdeidError):
        output_path_for(photo, root, out, "gif")


def test_write_is_atomic_and_makes_folders(tmp_path):
    target = tmp_path / "deep" / "er" / "a.jpg"
    write_image(target, _quadrants())
    assert os.listdir(target.parent) == ["a.jpg"]


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OutputError, match="disk full"):
        write_image(tmp_path / "a.png", _quadrants())
    assert os.listdir(tmp_path) == []


def test_existing_output_and_input_are_protected(tmp_path):
    target = write_image(tmp_path / "a.png", _quadrants())
    before = target.read_bytes()
    with pytest.raises(OutputError, match="exists"):
        write_image(target, np.zeros((5, 5, 3), np.uint8))
    assert target.read_bytes() == before
    write_image(target, np.zeros((5, 5, 3), np.uint8), overwrite=True)
    assert read_image(target).shape == (5, 5, 3)
    with pytest.raises(OutputError, match="input"):
        write_image(target, _quadrants(), overwrite=True, inputs=(target,))


def _write_text(path):
    path.write_text("this is not an image")
    return path


def _write_truncated(path):
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.jpg", "no such file"),
        (lambda d: d, "folder"),
        (lambda d: _write_text(d / "fake.jpg"), "not an image"),
        (lambda d: (d / "empty.png").write_bytes(b"") or d / "empty.png", "not an image"),
        (lambda d: _write_truncated(d / "cut.jpg"), "truncated"),
        (lambda d: _write_truncated(d / "cut.png"), "truncated"),
    ],
    ids=["missing", "folder", "text", "empty", "truncated-jpg", "truncated-png"],
)
def test_bad_inputs_raise_one_line_input_errors(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(InputError, match=message) as err:
        read_image(path)
    assert err.value.path == str(path)
    assert "\n" not in str(err.value)


def test_image_suffixes_are_lower_case_and_writable(tmp_path):
    assert ".jpg" in IMAGE_SUFFIXES and ".png" in IMAGE_SUFFIXES
    for suffix in IMAGE_SUFFIXES:
        assert suffix == suffix.lower()
        write_image(tmp_path / f"x{suffix}", _quadrants())
