#!/usr/bin/python3
"""PIL 9.4 as the oracle for data/image_decode.cc (run by tests/image_decode_test.cc).

  pil_decode_oracle.py generate DIR   writes test images of every stored mode into DIR
  pil_decode_oracle.py decode DIR     decodes every *.jpg and *.png in DIR with PIL and writes
                                      DIR/expected.txt, one line per decode:
                                        FILE CHANNELS REDUCTION WIDTH HEIGHT   (pixels in
                                        DIR/out/FILE.cCHANNELS.rREDUCTION.raw, HWC bytes)
                                      or  FILE CHANNELS REDUCTION error MESSAGE

A decode is Image.open(f), for REDUCTION > 1 im.draft("RGB", (w // r, h // r)) (which makes
PIL pick scale r exactly; draft with ceil(w / r) can pick a smaller one), then
im.convert("RGB" or "L"). JPEGs are decoded at reductions 1, 2, 4, 8 where both sides allow.

PNGs are written chunk by chunk (numpy + zlib), so that every bit depth, colour type, tRNS and
Adam7 interlacing is covered, including what PIL cannot write.
"""
import io
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

SIZES = [(1, 1), (3, 5), (17, 9), (250, 7), (7, 250), (61, 47)]


def smooth_image(w, h, channels, seed):
    """Gradients plus noise: chroma varies, so upsampling and rounding matter."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for c in range(channels):
        fx, fy, phase = rng.uniform(0.02, 0.3), rng.uniform(0.02, 0.3), rng.uniform(0, 6)
        plane = 128 + 100 * np.sin(fx * x + fy * y + phase) + rng.normal(0, 20, (h, w))
        planes.append(plane)
    return np.clip(np.stack(planes, axis=2), 0, 255).astype(np.uint8)


# ---- PNG writer ----

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def pack_rows(samples, depth):
    """samples: (h, w, c) ints -> list of row byte strings (filter byte not included)."""
    h, w, c = samples.shape
    flat = samples.reshape(h, w * c)
    if depth == 16:
        return [row.astype(">u2").tobytes() for row in flat]
    if depth == 8:
        return [row.astype(np.uint8).tobytes() for row in flat]
    per_byte = 8 // depth
    rows = []
    for row in flat:
        padded = np.zeros(-(-len(row) // per_byte) * per_byte, dtype=np.int64)
        padded[: len(row)] = row
        shifts = 8 - depth * (np.arange(per_byte) + 1)
        rows.append((padded.reshape(-1, per_byte) << shifts).sum(axis=1).astype(np.uint8).tobytes())
    return rows


def png_bytes(samples, depth, color_type, palette=None, trns=None, interlace=False, extra=()):
    h, w, _ = samples.shape
    raw = b""
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        raw += b"".join(b"\x00" + row for row in pack_rows(sub, depth))
    out = b"\x89PNG\r\n\x1a\n"
    out += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, int(interlace)))
    for kind, data in extra:
        out += chunk(kind, data)
    if palette is not None:
        out += chunk(b"PLTE", np.asarray(palette, dtype=np.uint8).tobytes())
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += chunk(b"IDAT", zlib.compress(raw, 6))
    out += chunk(b"IEND", b"")
    return out


def random_samples(w, h, c, maximum, seed):
    rng = np.random.RandomState(seed)
    return rng.randint(0, maximum + 1, size=(h, w, c)).astype(np.int64)


def write_pngs(out):
    for i, (w, h) in enumerate(SIZES):
        s = 1000 + i
        tag = "%dx%d" % (w, h)
        for depth in (1, 2, 4, 8):
            png = png_bytes(random_samples(w, h, 1, (1 << depth) - 1, s), depth, 0)
            write(out, "gray%d_%s.png" % (depth, tag), png)
        # 16-bit gray: PIL's "I"; half the values under 300, where clipping at 255 shows.
        g16 = random_samples(w, h, 1, 65535, s)
        g16[::2] %= 300
        write(out, "gray16_%s.png" % tag, png_bytes(g16, 16, 0))
        write(out, "gray8_trns_%s.png" % tag,
              png_bytes(random_samples(w, h, 1, 255, s), 8, 0, trns=struct.pack(">H", 7)))
        write(out, "gray16_trns_%s.png" % tag, png_bytes(g16, 16, 0, trns=struct.pack(">H", 7)))
        for depth in (8, 16):
            m = (1 << depth) - 1
            for kind, channels, color_type in (("la", 2, 4), ("rgb", 3, 2), ("rgba", 4, 6)):
                samples = random_samples(w, h, channels, m, s)
                png = png_bytes(samples, depth, color_type)
                write(out, "%s%d_%s.png" % (kind, depth, tag), png)
        write(out, "rgb8_trns_%s.png" % tag, png_bytes(random_samples(w, h, 3, 255, s), 8, 2,
                                                      trns=struct.pack(">HHH", 1, 2, 3)))
        rng = np.random.RandomState(s)
        for depth in (1, 2, 4, 8):
            entries = max(1, (1 << depth) - 1)  # one fewer than indexable: PIL's gray ramp shows
            palette = rng.randint(0, 256, size=3 * entries)
            idx = random_samples(w, h, 1, (1 << depth) - 1, s + 7)
            write(out, "pal%d_%s.png" % (depth, tag), png_bytes(idx, depth, 3, palette=palette))
            alphas = bytes(rng.randint(0, 256, size=entries).astype(np.uint8))
            write(out, "pal%d_trns_%s.png" % (depth, tag),
                  png_bytes(idx, depth, 3, palette=palette, trns=alphas))
        single = b"\xff\x00\xff"  # one fully transparent entry: PIL's int transparency
        write(out, "pal8_trns1_%s.png" % tag, png_bytes(random_samples(w, h, 1, 3, s), 8, 3,
                                                       palette=list(range(12)), trns=single))
        # Adam7 in several modes; ancillary chunks that must be skipped or ignored.
        extra = [(b"gAMA", struct.pack(">I", 45455)), (b"tEXt", b"Comment\x00dgqa"),
                 (b"iCCP", b"x\x00\x00" + zlib.compress(b"not really a profile"))]
        write(out, "rgb8_adam7_%s.png" % tag,
              png_bytes(random_samples(w, h, 3, 255, s), 8, 2, interlace=True, extra=extra))
        write(out, "rgba16_adam7_%s.png" % tag,
              png_bytes(random_samples(w, h, 4, 65535, s), 16, 6, interlace=True))
        write(out, "gray2_adam7_%s.png" % tag,
              png_bytes(random_samples(w, h, 1, 3, s), 2, 0, interlace=True))
        write(out, "gray16_adam7_%s.png" % tag, png_bytes(g16, 16, 0, interlace=True))
        write(out, "pal4_adam7_%s.png" % tag,
              png_bytes(random_samples(w, h, 1, 15, s), 4, 3, palette=list(range(48)),
                        interlace=True))


# ---- JPEG ----

def jpeg(image, **options):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def strip_app14(data):
    """The same JPEG without its Adobe segment (FF EE)."""
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF and data[i + 1] != 0xDA:
        length = struct.unpack(">H", data[i + 2 : i + 4])[0]
        if data[i + 1] == 0xEE:
            return data[:i] + data[i + 2 + length :]
        i += 2 + length
    raise ValueError("no APP14")


def insert_junk(data):
    """Junk bytes between two header segments: libjpeg warns, PIL decodes."""
    length = struct.unpack(">H", data[4:6])[0]
    cut = 4 + length
    return data[:cut] + b"\x00\x12\x34" + data[cut:]


def write_jpegs(out):
    sizes = SIZES + [(203, 157), (64, 64)]
    for i, (w, h) in enumerate(sizes):
        tag = "%dx%d" % (w, h)
        rgb = Image.fromarray(smooth_image(w, h, 3, 2000 + i), "RGB")
        for sub, name in ((2, "420"), (1, "422"), (0, "444")):
            write(out, "rgb%s_%s.jpg" % (name, tag), jpeg(rgb, quality=90, subsampling=sub))
        write(out, "rgb420_prog_%s.jpg" % tag, jpeg(rgb, quality=75, progressive=True))
        write(out, "rgb444_prog_%s.jpg" % tag,
              jpeg(rgb, quality=85, progressive=True, subsampling=0))
        gray = Image.fromarray(smooth_image(w, h, 1, 3000 + i)[:, :, 0], "L")
        write(out, "gray_%s.jpg" % tag, jpeg(gray, quality=90))
        write(out, "gray_prog_%s.jpg" % tag, jpeg(gray, quality=90, progressive=True))
        cmyk = Image.fromarray(smooth_image(w, h, 4, 4000 + i), "CMYK")
        cmyk_bytes = jpeg(cmyk, quality=90)
        write(out, "cmyk_%s.jpg" % tag, cmyk_bytes)
        write(out, "cmyk_noadobe_%s.jpg" % tag, strip_app14(cmyk_bytes))
    rgb = Image.fromarray(smooth_image(61, 47, 3, 77), "RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation "rotate 90": PIL's open does not apply it
    write(out, "rgb420_exif6_61x47.jpg", jpeg(rgb, quality=90, exif=exif.tobytes()))
    write(out, "rgb420_junk_61x47.jpg", insert_junk(jpeg(rgb, quality=90)))
    # PIL decodes bytes after the EOI marker, and calls a file without EOI truncated.
    write(out, "rgb420_trailing_61x47.jpg", jpeg(rgb, quality=90) + b"trailing bytes")
    write(out, "rgb420_noeoi_61x47.jpg", jpeg(rgb, quality=90)[:-2])
    write(out, "rgb420_prog_noeoi_61x47.jpg", jpeg(rgb, quality=90, progressive=True)[:-2])


def write(out, name, data):
    with open(os.path.join(out, name), "wb") as f:
        f.write(data)


# ---- decoding ----

def decode_one(path, channels, reduction):
    im = Image.open(path)
    w, h = im.size
    if reduction > 1:
        im.draft("RGB", (w // reduction, h // reduction))
        expected = (-(-w // reduction), -(-h // reduction))
        if im.size != expected:
            raise AssertionError("draft gave %s, not %s" % (im.size, expected))
    return np.asarray(im.convert("RGB" if channels == 3 else "L"))


def decode_all(directory):
    os.makedirs(os.path.join(directory, "out"), exist_ok=True)
    lines = []
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if not name.endswith((".jpg", ".png")):
            continue
        with Image.open(path) as probe:
            w, h = probe.size
        reductions = [1]
        if name.endswith(".jpg"):
            reductions += [r for r in (2, 4, 8) if r <= min(w, h)]
        for channels in (3, 1):
            for r in reductions:
                try:
                    pixels = decode_one(path, channels, r)
                except Exception as e:  # noqa: BLE001 -- the message goes to the test
                    message = str(e).replace("\n", " ")
                    lines.append("%s %d %d error %s" % (name, channels, r, message))
                    continue
                raw = "%s.c%d.r%d.raw" % (name, channels, r)
                with open(os.path.join(directory, "out", raw), "wb") as f:
                    f.write(np.ascontiguousarray(pixels).tobytes())
                height, width = pixels.shape[:2]
                lines.append("%s %d %d %d %d" % (name, channels, r, width, height))
    with open(os.path.join(directory, "expected.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("generate", "decode"):
        sys.exit(__doc__)
    if sys.argv[1] == "generate":
        write_pngs(sys.argv[2])
        write_jpegs(sys.argv[2])
    else:
        decode_all(sys.argv[2])


if __name__ == "__main__":
    main()
