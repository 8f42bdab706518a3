// The file lists of image datasets stored one file per image: torchvision's ImageFolder layout
// and the published layouts of Food-101 and Tiny-ImageNet-200 (docs/design.md §5.10).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/encoded_store.h"

namespace dgqa {

struct ImageFileList {
  std::string format;                // "IMAGE_FOLDER", "FOOD101", "TINY_IMAGENET"
  std::string origin;                // the folder or list file the examples come from
  std::vector<std::string> classes;  // label i is classes[i]
  std::vector<std::string> files;    // in dataset order
  std::vector<int32_t> labels;
};

// torchvision's ImageFolder(split_dir) order: class folders sorted by name (hidden ones too,
// as os.scandir lists them), then under each class every file of every subfolder (symlinks
// followed), folders in sorted path order and files sorted within a folder; the files whose
// name ends in .jpg, .jpeg or .png in any case. With `classes` given (the training split's),
// the labels are their indices there and a class folder absent from it is an error; else the
// classes are split_dir's folders. Throws InputError naming the path at fault: a missing or
// unreadable folder, no class folders, a class folder without images, a symlink loop, or an
// image type torchvision would list that dgqa cannot decode (.bmp, .ppm, .pgm, .tif, .webp).
ImageFileList list_image_folder(const std::string& split_dir,
                                const std::vector<std::string>* classes = nullptr);

// Food-101 under `root`: classes in meta/classes.txt order, examples in meta/train.txt (or
// meta/test.txt) order, the image of entry "class/id" at images/class/id.jpg.
ImageFileList list_food101(const std::string& root, bool train);

// Tiny-ImageNet-200 under `root`: the classes are the ids of wnids.txt sorted (as ImageFolder
// over train/ numbers them); training images train/<wnid>/images/*, sorted per class;
// validation images val/images/*, sorted by name, labelled by val/val_annotations.txt.
ImageFileList list_tiny_imagenet(const std::string& root, bool train);

// A store reading the listed files.
std::unique_ptr<EncodedStore> file_list_store(ImageFileList list);

}  // namespace dgqa
