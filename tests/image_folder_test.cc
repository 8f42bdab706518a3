// The file lists of the image-folder formats: torchvision's ImageFolder order, Food-101 and
// Tiny-ImageNet layouts, and the errors for broken trees.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "data/image_folder.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

namespace fs = std::filesystem;
using tests::expect_contains;
using tests::input_error_of;
using tests::make_temp_dir;
using tests::write_file;

void touch(const std::string& path) {
  fs::create_directories(fs::path(path).parent_path());
  write_file(path, "x");
}

// A tree with the cases that decide ImageFolder's order: classes sorted by byte value (upper
// case first, a hidden folder counted), images in nested folders (walked in sorted path
// order, '-' before '/'), extensions in any case, other files ignored.
std::string make_tree() {
  const std::string root = make_temp_dir("image_folder") + "/train";
  for (const char* file :
       {"b/2.jpg", "b/10.JPG", "b/1.png", "b/notes.txt", "a/x/3.jpeg", "a/x-y/4.PNG", "a/x/y/5.png",
        "a/0.jpg", "B/7.jpg", ".hidden/8.jpg", "c/sub/deeper/9.Jpeg"}) {
    touch(root + "/" + file);
  }
  write_file(root + "/not_a_class.jpg", "x");  // files at the top are not classes
  return root;
}

TEST(ImageFolderTest, ListsAsTorchvisionImageFolderDoes) {
  const std::string root = make_tree();
  const ImageFileList list = list_image_folder(root);
  EXPECT_EQ(list.classes, (std::vector<std::string>{".hidden", "B", "a", "b", "c"}));
  const std::vector<std::string> expected = {
      ".hidden/8.jpg", "B/7.jpg", "a/0.jpg",  "a/x/3.jpeg", "a/x-y/4.PNG",
      "a/x/y/5.png",   "b/1.png", "b/10.JPG", "b/2.jpg",    "c/sub/deeper/9.Jpeg"};
  ASSERT_EQ(list.files.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(list.files[i], root + "/" + expected[i]);
  EXPECT_EQ(list.labels, (std::vector<int32_t>{0, 1, 2, 2, 2, 2, 3, 3, 3, 4}));
}

// The same tree through torchvision itself (the order of its samples and their targets).
TEST(ImageFolderTest, MatchesTorchvisionOnTheSameTree) {
  if (!tests::have_python_modules("torchvision")) GTEST_SKIP() << "needs python3-torchvision";
  const std::string root = make_tree();
  std::string output;
  const std::string script =
      "import sys, torchvision\n"
      "d = torchvision.datasets.ImageFolder(sys.argv[1], loader=lambda p: p)\n"
      "print('\\n'.join(f'{t} {p}' for p, t in d.samples))\n";
  write_file(root + "/../list.py", script);
  ASSERT_EQ(tests::run_command("/usr/bin/python3 " + root + "/../list.py " + root, &output), 0)
      << output;
  const ImageFileList list = list_image_folder(root);
  std::ostringstream ours;
  for (size_t i = 0; i < list.files.size(); ++i) {
    ours << list.labels[i] << " " << list.files[i] << "\n";
  }
  EXPECT_EQ(ours.str(), output);
}

TEST(ImageFolderTest, ValidationUsesTheTrainingClasses) {
  const std::string root = make_temp_dir("image_folder_val");
  for (const char* file : {"train/cat/1.jpg", "train/dog/1.jpg", "train/emu/1.jpg", "val/emu/5.png",
                           "val/cat/2.jpg"}) {
    touch(root + "/" + file);
  }
  const ImageFileList train = list_image_folder(root + "/train");
  const ImageFileList val = list_image_folder(root + "/val", &train.classes);
  EXPECT_EQ(val.labels, (std::vector<int32_t>{0, 2}));  // cat, emu: as in training
  touch(root + "/val/fox/1.jpg");
  expect_contains(input_error_of([&] { list_image_folder(root + "/val", &train.classes); }),
                  root + "/val/fox: a class the training split does not have");
}

TEST(ImageFolderTest, BrokenTreesAreErrorsNamingThePath) {
  const std::string root = make_temp_dir("image_folder_bad");
  expect_contains(input_error_of([&] { list_image_folder(root + "/missing"); }),
                  root + "/missing: cannot open folder");
  touch(root + "/file/x");
  expect_contains(input_error_of([&] { list_image_folder(root + "/file/x"); }),
                  root + "/file/x: cannot open folder (Not a directory)");
  fs::create_directories(root + "/none");
  expect_contains(input_error_of([&] { list_image_folder(root + "/none"); }), "no class folders");

  touch(root + "/empty_class/a/1.jpg");
  fs::create_directories(root + "/empty_class/b/sub");
  touch(root + "/empty_class/b/readme.txt");
  expect_contains(input_error_of([&] { list_image_folder(root + "/empty_class"); }),
                  root + "/empty_class/b: a class folder without images");

  touch(root + "/loop/a/1.jpg");
  fs::create_directory_symlink("..", root + "/loop/a/back");
  expect_contains(input_error_of([&] { list_image_folder(root + "/loop"); }), "symlink loop");

  touch(root + "/bmp/a/1.jpg");
  touch(root + "/bmp/a/2.BMP");
  expect_contains(input_error_of([&] { list_image_folder(root + "/bmp"); }),
                  root + "/bmp/a/2.BMP: only JPEG and PNG images are supported");
}

TEST(ImageFolderTest, UnreadableFolderIsAnError) {
  if (geteuid() == 0) GTEST_SKIP() << "root reads folders whatever their permissions";
  const std::string root = make_temp_dir("image_folder_perm");
  touch(root + "/a/1.jpg");
  chmod((root + "/a").c_str(), 0);
  const std::string message = input_error_of([&] { list_image_folder(root); });
  chmod((root + "/a").c_str(), 0755);
  expect_contains(message, root + "/a: cannot open folder (Permission denied)");
}

TEST(Food101Test, ListsTheMetaFilesInOrder) {
  const std::string root = make_temp_dir("food101");
  fs::create_directories(root + "/meta");
  write_file(root + "/meta/classes.txt", "apple_pie\nbeef_tartare\n");
  write_file(root + "/meta/train.txt", "apple_pie/11\nbeef_tartare/3\napple_pie/2\n");
  write_file(root + "/meta/test.txt", "beef_tartare/7\n");
  const ImageFileList train = list_food101(root, true);
  EXPECT_EQ(train.files, (std::vector<std::string>{root + "/images/apple_pie/11.jpg",
                                                   root + "/images/beef_tartare/3.jpg",
                                                   root + "/images/apple_pie/2.jpg"}));
  EXPECT_EQ(train.labels, (std::vector<int32_t>{0, 1, 0}));
  EXPECT_EQ(list_food101(root, false).labels, (std::vector<int32_t>{1}));
  write_file(root + "/meta/test.txt", "beef_tartare/7\nsushi/1\n");
  expect_contains(input_error_of([&] { list_food101(root, false); }),
                  root + "/meta/test.txt: line 2 'sushi/1'");
}

TEST(TinyImageNetTest, ListsTrainingFoldersAndValidationAnnotations) {
  const std::string root = make_temp_dir("tiny");
  write_file(root + "/wnids.txt", "n02\nn01\n");
  for (const char* file :
       {"train/n01/images/n01_1.JPEG", "train/n01/images/n01_0.JPEG", "train/n02/images/n02_0.JPEG",
        "val/images/val_0.JPEG", "val/images/val_1.JPEG", "val/images/val_10.JPEG"}) {
    touch(root + "/" + file);
  }
  write_file(root + "/train/n01/n01_boxes.txt", "ignored");
  write_file(
      root + "/val/val_annotations.txt",
      "val_1.JPEG\tn01\t0\t0\t1\t1\nval_0.JPEG\tn02\t0\t0\t1\t1\nval_10.JPEG\tn01\t1\t1\t2\t2\n");
  const ImageFileList train = list_tiny_imagenet(root, true);
  EXPECT_EQ(train.classes, (std::vector<std::string>{"n01", "n02"}));
  EXPECT_EQ(train.files, (std::vector<std::string>{root + "/train/n01/images/n01_0.JPEG",
                                                   root + "/train/n01/images/n01_1.JPEG",
                                                   root + "/train/n02/images/n02_0.JPEG"}));
  EXPECT_EQ(train.labels, (std::vector<int32_t>{0, 0, 1}));
  const ImageFileList val = list_tiny_imagenet(root, false);
  EXPECT_EQ(val.files, (std::vector<std::string>{root + "/val/images/val_0.JPEG",
                                                 root + "/val/images/val_1.JPEG",
                                                 root + "/val/images/val_10.JPEG"}));
  EXPECT_EQ(val.labels, (std::vector<int32_t>{1, 0, 0}));
}

}  // namespace
}  // namespace dgqa
