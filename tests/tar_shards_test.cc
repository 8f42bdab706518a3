// Tar shards: shard-list expansion, our ustar writer, the index of samples (also of archives
// Python's tarfile writes, GNU and PAX long names included) and the errors of bad shards.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "data/tar_shards.h"
#include "data/tar_writer.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::expect_contains;
using tests::input_error_of;
using tests::make_temp_dir;
using tests::read_file;
using tests::write_file;

TEST(ShardListTest, ExpandsBracesAsBraceexpandDoes) {
  EXPECT_EQ(expand_shard_list("train-{000..002}.tar", "/data", "f"),
            (std::vector<std::string>{"/data/train-000.tar", "/data/train-001.tar",
                                      "/data/train-002.tar"}));
  EXPECT_EQ(expand_shard_list("{a,b}-{8..10}.tar /abs/c.tar", "", "f"),
            (std::vector<std::string>{"a-8.tar", "a-9.tar", "a-10.tar", "b-8.tar", "b-9.tar",
                                      "b-10.tar", "/abs/c.tar"}));
  EXPECT_EQ(expand_shard_list("s-{7..0010}.tar", "r", "f").front(), "r/s-0007.tar");
  for (const char* bad : {"x-{1..}.tar", "x-{3..1}.tar", "x-{1..2.tar", "x-}.tar", "  "}) {
    expect_contains(input_error_of([&] { expand_shard_list(bad, "", "data.train_shards"); }),
                    "data.train_shards");
  }
}

// Lists of more than 10^5 shards or 16 MiB of paths are refused before they are built (a typo
// such as {0..999999999} would otherwise take gigabytes); any number of groups expands without
// recursion.
TEST(ShardListTest, RefusesListsOfMoreThan100000ShardsOr16MiB) {
  for (const char* huge : {"x-{0..999999999}.tar", "{0..999}{0..999}", "{0..99999} y"}) {
    const std::string message =
        input_error_of([&] { expand_shard_list(huge, "", "data.train_shards"); });
    expect_contains(message, "data.train_shards: ");
    expect_contains(message, "names more than 100000 shards");
  }
  EXPECT_EQ(expand_shard_list("{0..99999}", "", "f").size(), 100000u);
  // Long paths: 10^4 shards of 2000 bytes.
  expect_contains(
      input_error_of([&] { expand_shard_list("{0000..9999}" + std::string(2000, 'p'), "", "f"); }),
      "f: names more than 16 MiB of shard paths");
  // Other limits (the fuzz target's).
  const ShardListLimits small{10, 100};
  EXPECT_EQ(expand_shard_list("{0..9}", "", "f", small).size(), 10u);
  expect_contains(input_error_of([&] { expand_shard_list("{0..10}", "", "f", small); }),
                  "f: names more than 10 shards");
  expect_contains(
      input_error_of([&] { expand_shard_list("{0..1}" + std::string(50, 'p'), "", "f", small); }),
      "f: names more than 100 bytes of shard paths");
  std::string groups;
  for (int i = 0; i < 20000; ++i) groups += "{a}";
  EXPECT_EQ(expand_shard_list(groups, "/r", "f"),
            std::vector<std::string>{"/r/" + std::string(20000, 'a')});
}

// Writes a shard of samples key i: image bytes "image<i>" as .png (even i) or .jpg, class i.
std::string write_shard(const std::string& path, int first, int count) {
  TarWriter tar(path);
  for (int i = first; i < first + count; ++i) {
    const std::string key = "sample" + std::to_string(i);
    const std::string image = "image" + std::to_string(i), label = std::to_string(i % 3);
    tar.add(key + ".json", "{}", 2);
    tar.add(key + (i % 2 == 0 ? ".png" : ".JPG"), image.data(), image.size());
    tar.add(key + ".cls", label.data(), label.size());
  }
  tar.finish();
  return path;
}

TEST(TarShardsTest, IndexesSamplesInShardOrder) {
  const std::string dir = make_temp_dir("shards");
  const std::vector<std::string> shards = {write_shard(dir + "/a.tar", 0, 3),
                                           write_shard(dir + "/b.tar", 3, 2)};
  const auto store = open_tar_shards(shards);
  ASSERT_EQ(store->size(), 5);
  std::vector<uint8_t> bytes;
  for (int i = 0; i < 5; ++i) {
    store->read(i, &bytes);
    EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "image" + std::to_string(i));
    EXPECT_EQ(store->label(i), i % 3);
  }
  EXPECT_EQ(store->name(4), dir + "/b.tar: sample4.png");
}

// Our archives are valid tar for Python, and Python's archives (long names as GNU or PAX
// headers, folders, a nested key path) index as WebDataset reads them.
TEST(TarShardsTest, InteroperatesWithPythonTarfile) {
  if (!tests::have_python_modules("tarfile")) GTEST_SKIP() << "needs /usr/bin/python3";
  const std::string dir = make_temp_dir("shards_py");
  write_shard(dir + "/ours.tar", 0, 2);
  std::string output;
  ASSERT_EQ(tests::run_command("/usr/bin/python3 -c \"import tarfile; "
                               "print(tarfile.open('" +
                                   dir + "/ours.tar').getnames())\"",
                               &output),
            0);
  expect_contains(output, "'sample0.json', 'sample0.png', 'sample0.cls'");

  const std::string long_key = "d/" + std::string(120, 'k');
  write_file(
      dir + "/make.py",
      "import io, sys, tarfile\n"
      "for fmt, name in ((tarfile.GNU_FORMAT, 'gnu'), (tarfile.PAX_FORMAT, 'pax')):\n"
      "  with tarfile.open(sys.argv[1] + '/' + name + '.tar', 'w', format=fmt) as t:\n"
      "    d = tarfile.TarInfo('d'); d.type = tarfile.DIRTYPE; t.addfile(d)\n"
      "    for key, data in (('" +
          long_key +
          "', b'long'), ('d/xy', b'short')):\n"
          "      for ext, b in (('.png', data), ('.cls', b' 7\\n')):\n"
          "        i = tarfile.TarInfo(key + ext); i.size = len(b); t.addfile(i, io.BytesIO(b))\n");
  ASSERT_EQ(tests::run_command("/usr/bin/python3 " + dir + "/make.py " + dir, &output), 0)
      << output;
  for (const char* format : {"gnu", "pax"}) {
    const auto store = open_tar_shards({dir + "/" + format + ".tar"});
    ASSERT_EQ(store->size(), 2) << format;
    std::vector<uint8_t> bytes;
    store->read(0, &bytes);
    EXPECT_EQ(std::string(bytes.begin(), bytes.end()), "long") << format;
    EXPECT_EQ(store->name(0), dir + "/" + format + ".tar: " + long_key + ".png");
    EXPECT_EQ(store->label(1), 7);
  }
}

TEST(TarShardsTest, BadShardsAreErrorsNamingThem) {
  const std::string dir = make_temp_dir("shards_bad");
  const auto error_of = [&](const std::string& path) {
    return input_error_of([&] { open_tar_shards({path}); });
  };
  expect_contains(error_of(dir + "/missing.tar"), dir + "/missing.tar: cannot open the shard");
  write_file(dir + "/text.tar", std::string(2000, 'a'));
  expect_contains(error_of(dir + "/text.tar"), dir + "/text.tar: not a tar file");
  write_file(dir + "/empty.tar", "");
  expect_contains(error_of(dir + "/empty.tar"), dir + "/empty.tar: truncated");

  const std::string good = read_file(write_shard(dir + "/good.tar", 0, 2));
  write_file(dir + "/cut.tar", good.substr(0, 1024 + 100));
  expect_contains(error_of(dir + "/cut.tar"), dir + "/cut.tar: truncated");

  {
    TarWriter tar(dir + "/nocls.tar");
    tar.add("a.jpg", "x", 1);
    tar.finish();
  }
  expect_contains(error_of(dir + "/nocls.tar"), dir + "/nocls.tar: sample 'a' has no .cls member");
  {
    TarWriter tar(dir + "/noimage.tar");
    tar.add("a.cls", "1", 1);
    tar.finish();
  }
  expect_contains(error_of(dir + "/noimage.tar"), "sample 'a' has no .jpg/.png image");
  {
    TarWriter tar(dir + "/badcls.tar");
    tar.add("a.jpg", "x", 1);
    tar.add("a.cls", "-3", 2);
    tar.finish();
  }
  expect_contains(error_of(dir + "/badcls.tar"),
                  dir + "/badcls.tar: a.cls: the class '-3' is not a non-negative integer");
  if (tests::have_python_modules("tarfile")) {
    write_file(
        dir + "/link.py",
        "import sys, tarfile\n"
        "with tarfile.open(sys.argv[1], 'w') as t:\n"
        "  i = tarfile.TarInfo('a.jpg'); i.type = tarfile.SYMTYPE; i.linkname = '/etc/passwd'\n"
        "  t.addfile(i)\n");
    ASSERT_EQ(tests::run_command("/usr/bin/python3 " + dir + "/link.py " + dir + "/link.tar"), 0);
    expect_contains(error_of(dir + "/link.tar"), "member 'a.jpg' is not a regular file");
  }
}

// Member sizes in base-256 (as GNU tar writes sizes of 8 GiB and more) that overflow int64_t,
// or that fit but put the member's end past any file: errors, without overflow on the way.
TEST(TarShardsTest, HugeMemberSizesAreErrors) {
  const std::string dir = make_temp_dir("shards_huge");
  const std::string good = read_file(write_shard(dir + "/good.tar", 0, 1));
  // The shard with the first member's size field (bytes 124-135) replaced and its header
  // checksum (bytes 148-155: six octal digits, NUL, space) recomputed.
  const auto error_with_size = [&](const std::string& name, const std::string& size_field) {
    std::string shard = good;
    shard.replace(124, 12, size_field);
    shard.replace(148, 8, 8, ' ');
    unsigned sum = 0;
    for (int i = 0; i < 512; ++i) sum += static_cast<unsigned char>(shard[i]);
    char checksum[8];
    std::snprintf(checksum, sizeof(checksum), "%06o", sum);
    shard.replace(148, 7, checksum, 7);
    write_file(dir + "/" + name, shard);
    return input_error_of([&] { open_tar_shards({dir + "/" + name}); });
  };
  expect_contains(error_with_size("overflow.tar", "\x80" + std::string(11, '\xff')),
                  dir + "/overflow.tar: bad member size");
  const std::string int64_max = std::string("\x80\0\0\0\x7f", 5) + std::string(7, '\xff');
  expect_contains(error_with_size("int64_max.tar", int64_max),
                  dir + "/int64_max.tar: truncated (a member ends past the file)");
}

}  // namespace
}  // namespace dgqa
