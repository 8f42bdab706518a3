#!/usr/bin/env python3
"""Reads back the TensorBoard event files of a dgqa run without any of dgqa's code.

Usage: tensorboard_readback.py DGQA_BINARY

Trains a tiny DGQA_EMA ViT with train.tensorboard on a dataset made here, then resumes it from
a checkpoint in the middle (which must cut the event files back), and checks every file under
OUT/tensorboard: the TFRecord framing and both masked CRC-32Cs of every record (with
python3-crc32c), the protobuf wire format decoded by hand from TensorBoard's field numbers
(Event: wall_time 1 double, step 2 int64, file_version 3 string, summary 5; Summary: value 1;
Value: tag 1 string, simple_value 2 float), and the tags, steps and values against the run's
metrics.jsonl: every step once over all files, every value its metrics value as a float32.
Exits 77 (skipped) when python3-crc32c is not installed.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

try:
    import crc32c
except ImportError:
    print("SKIP: python3-crc32c is not installed (launch/install_deps.sh --with-torch)")
    sys.exit(77)

from idx_fixture import write_idx  # noqa: E402 (after the skip)

MAX_STEPS = 12
RESUME_STEP = 5


# ---- The run ----

def write_config(directory):
    train_images, train_labels = write_idx(directory, "train", 64, 8, 1)
    test_images, test_labels = write_idx(directory, "t10k", 40, 8, 2)
    path = os.path.join(directory, "config.pbtxt")
    with open(path, "w") as f:
        f.write(f"""seed: 3
model {{ image_size: 8 patch_size: 4 in_channels: 1 num_classes: 4 embed_dim: 16 depth: 2
        num_heads: 4 num_kv_heads: 2 attention: DGQA_EMA dgqa_window: 1 }}
data {{ format: IDX train_images: "{train_images}" train_labels: "{train_labels}"
       test_images: "{test_images}" test_labels: "{test_labels}" }}
optimizer {{ lr: 3e-3 }}
train {{ global_batch_size: 8 max_steps: {MAX_STEPS} eval_every_steps: 4 eval_batch_size: 16
        log_every_steps: 2 threads: 1 tensorboard: true }}
checkpoint {{ every_steps: {RESUME_STEP} keep_last: 0 }}
""")
    return path


def train(binary, config, out, *args):
    command = [binary, "train", "--config", config, "--out", out, *args]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        sys.exit(f"FAIL: {' '.join(command)} exited {run.returncode}:\n{run.stderr}")


# ---- The files ----

def masked_crc(data):
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def records(path):
    """The data of every record of a TFRecord file, both CRCs checked."""
    with open(path, "rb") as f:
        content = f.read()
    offset = 0
    while offset < len(content):
        where = f"{path} at byte {offset}"
        assert len(content) - offset >= 12, f"{where}: a record cut short in its header"
        (length,) = struct.unpack_from("<Q", content, offset)
        (length_crc,) = struct.unpack_from("<I", content, offset + 8)
        assert length_crc == masked_crc(content[offset:offset + 8]), f"{where}: length CRC"
        data = content[offset + 12:offset + 12 + length]
        assert len(data) == length and offset + 16 + length <= len(content), f"{where}: cut short"
        (data_crc,) = struct.unpack_from("<I", content, offset + 12 + length)
        assert data_crc == masked_crc(data), f"{where}: data CRC"
        yield data
        offset += 16 + length


def varint(data, pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def fields(data):
    """(field number, wire type, value) of a message: ints, or bytes for length-delimited."""
    pos = 0
    while pos < len(data):
        key, pos = varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = varint(data, pos)
        elif wire_type == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire_type == 2:
            length, pos = varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire_type == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise AssertionError(f"wire type {wire_type} of field {number}")
        yield number, wire_type, value
    assert pos == len(data), "a field runs past the end of its message"


def decode_event(data):
    event = {"step": 0, "scalars": {}}
    for number, wire_type, value in fields(data):
        if (number, wire_type) == (1, 1):
            (event["wall_time"],) = struct.unpack("<d", value)
        elif (number, wire_type) == (2, 0):
            event["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif (number, wire_type) == (3, 2):
            event["file_version"] = value.decode()
        elif (number, wire_type) == (5, 2):
            for summary_number, summary_type, summary_value in fields(value):
                assert (summary_number, summary_type) == (1, 2), "Summary holds only values"
                tag, scalar = decode_value(summary_value)
                assert tag not in event["scalars"], f"tag {tag} twice in one event"
                event["scalars"][tag] = scalar
        else:
            raise AssertionError(f"unexpected Event field {number} (wire type {wire_type})")
    return event


def decode_value(data):
    tag = scalar = None
    for number, wire_type, value in fields(data):
        if (number, wire_type) == (1, 2):
            tag = value.decode()
        elif (number, wire_type) == (2, 5):
            (scalar,) = struct.unpack("<f", value)
        else:
            raise AssertionError(f"unexpected Value field {number} (wire type {wire_type})")
    assert tag is not None and scalar is not None, "a Value without tag or simple_value"
    return tag, scalar


def events_by_step(directory):
    """step -> {tag: value} over every file; a step in two events is a failure."""
    by_step = {}
    names = sorted(os.listdir(directory))
    assert names and all(n.startswith("events.out.tfevents.") for n in names), names
    for name in names:
        events = [decode_event(data) for data in records(os.path.join(directory, name))]
        assert events and events[0].get("file_version") == "brain.Event:2", name
        for event in events[1:]:
            assert "file_version" not in event, f"{name}: a second version record"
            assert event["wall_time"] > 1.5e9, f"{name}: wall_time {event['wall_time']}"
            assert event["step"] not in by_step, f"step {event['step']} twice ({name})"
            by_step[event["step"]] = event["scalars"]
    return by_step


# ---- The comparison ----

def float32(value):
    return struct.unpack("<f", struct.pack("<f", value))[0]


def expected_by_step(metrics_path):
    """step -> {tag: float32 value} from metrics.jsonl, by the tags dgqa writes."""
    expected = {}
    with open(metrics_path) as f:
        for line in f:
            record = json.loads(line)
            kind = record["kind"]
            if kind not in ("train", "eval", "allocation", "key_norms", "dgqa_cache"):
                continue
            scalars = expected.setdefault(record["step"], {})
            if kind == "train":
                for name in ("loss", "lr", "grad_norm", "images_per_sec", "top1"):
                    scalars["train/" + name] = float32(record[name])
            elif kind == "eval":
                for name in ("loss", "top1", "top5"):
                    scalars["eval/" + name] = float32(record[name])
            else:  # per layer and K/V head
                for layer, values in enumerate(record["layers"]):
                    for group, value in enumerate(values):
                        scalars[f"{kind}/layer_{layer}/kv_{group}"] = float32(value)
    return expected


def main():
    binary = sys.argv[1]
    scratch = tempfile.mkdtemp(prefix="tensorboard_readback_")
    try:
        config = write_config(scratch)
        out = os.path.join(scratch, "out")
        train(binary, config, out)
        before = events_by_step(os.path.join(out, "tensorboard"))
        assert max(before) == MAX_STEPS, sorted(before)
        checkpoint = os.path.join(out, "checkpoints", f"step_{RESUME_STEP:08d}")
        time.sleep(1.05)  # a later second: the resumed run writes a file of its own
        train(binary, config, out, "--resume", checkpoint)

        actual = events_by_step(os.path.join(out, "tensorboard"))
        expected = expected_by_step(os.path.join(out, "metrics.jsonl"))
        assert sorted(expected) == sorted(actual), (sorted(expected), sorted(actual))
        assert max(actual) == MAX_STEPS and 1 in actual, sorted(actual)
        for step in sorted(expected):
            assert actual[step] == expected[step], (step, actual[step], expected[step])
        # The events up to the checkpoint are the first run's (their images/s too).
        for step in [s for s in before if s <= RESUME_STEP]:
            assert before[step] == actual[step], step
        files = os.listdir(os.path.join(out, "tensorboard"))
        assert len(files) == 2, files
        print(f"OK: {len(actual)} steps, {sum(map(len, actual.values()))} scalars, "
              f"{len(files)} event files")
    finally:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
