"""A tiny IDX dataset for the Python tests that train with the dgqa binary."""
import os
import random
import struct


def write_idx(directory, name, count, size, seed):
    """IDX image and label files of `count` images: the class k image is bright in row k."""
    rng = random.Random(seed)
    labels = [i % 4 for i in range(count)]
    rng.shuffle(labels)
    pixels = bytearray()
    for label in labels:
        for row in range(size):
            pixels += bytes((150 if row * 4 // size == label else 0) + rng.randrange(90)
                            for _ in range(size))
    images = os.path.join(directory, name + "-images-idx3-ubyte")
    with open(images, "wb") as f:
        f.write(struct.pack(">IIII", 0x803, count, size, size) + bytes(pixels))
    labels_path = os.path.join(directory, name + "-labels-idx1-ubyte")
    with open(labels_path, "wb") as f:
        f.write(struct.pack(">II", 0x801, count) + bytes(labels))
    return images, labels_path
