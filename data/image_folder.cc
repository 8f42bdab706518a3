#include "data/image_folder.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <utility>

#include "common/error.h"

namespace dgqa {
namespace {

std::string system_error(const std::string& path, const std::string& what) {
  return path + ": " + what + " (" + std::strerror(errno) + ")";
}

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The images dgqa decodes, and those torchvision's ImageFolder would also list.
bool is_supported_image(const std::string& name) {
  const std::string n = lower(name);
  return ends_with(n, ".jpg") || ends_with(n, ".jpeg") || ends_with(n, ".png");
}
bool is_unsupported_image(const std::string& name) {
  const std::string n = lower(name);
  for (const char* suffix : {".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"}) {
    if (ends_with(n, suffix)) return true;
  }
  return false;
}

struct FolderEntries {
  std::vector<std::string> folders, files;  // names, as readdir gives them
};

// The entries of `path`, symlinks followed (a broken link counts as a file).
FolderEntries read_folder(const std::string& path) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) throw InputError(system_error(path, "cannot open folder"));
  FolderEntries entries;
  errno = 0;
  while (const dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name == "." || name == "..") continue;
    struct stat info;
    const bool is_folder = stat((path + "/" + name).c_str(), &info) == 0 && S_ISDIR(info.st_mode);
    (is_folder ? entries.folders : entries.files).push_back(name);
  }
  const int read_error = errno;
  closedir(dir);
  if (read_error != 0) {
    errno = read_error;
    throw InputError(system_error(path, "cannot read folder"));
  }
  std::sort(entries.folders.begin(), entries.folders.end());
  std::sort(entries.files.begin(), entries.files.end());
  return entries;
}

std::pair<dev_t, ino_t> identity_of(const std::string& path) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) throw InputError(system_error(path, "cannot open folder"));
  return {info.st_dev, info.st_ino};
}

// Every folder under `path` (itself included) with its sorted files, as os.walk with
// followlinks gives them; `ancestors` are the folders above, to catch symlink loops.
void walk(const std::string& path, std::set<std::pair<dev_t, ino_t>>* ancestors,
          std::map<std::string, std::vector<std::string>>* files_by_folder) {
  const auto identity = identity_of(path);
  if (!ancestors->insert(identity).second) {
    throw InputError(path + ": a symlink loop (this folder contains itself)");
  }
  FolderEntries entries = read_folder(path);
  for (const std::string& folder : entries.folders) {
    walk(path + "/" + folder, ancestors, files_by_folder);
  }
  (*files_by_folder)[path] = std::move(entries.files);
  ancestors->erase(identity);
}

// The images of one class folder in ImageFolder's order.
std::vector<std::string> class_images(const std::string& class_dir) {
  std::set<std::pair<dev_t, ino_t>> ancestors;
  std::map<std::string, std::vector<std::string>> files_by_folder;  // sorted by path, as
  walk(class_dir, &ancestors, &files_by_folder);                    // sorted(os.walk(...))
  std::vector<std::string> images;
  for (const auto& [folder, files] : files_by_folder) {
    for (const std::string& file : files) {
      const std::string path = folder + "/" + file;
      if (is_unsupported_image(file)) {
        throw InputError(path +
                         ": only JPEG and PNG images are supported (convert it, or move "
                         "it out of the dataset)");
      }
      if (is_supported_image(file)) images.push_back(path);
    }
  }
  if (images.empty()) {
    throw InputError(class_dir + ": a class folder without images (.jpg, .jpeg, .png)");
  }
  return images;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(system_error(path, "cannot open"));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  if (in.bad()) throw InputError(system_error(path, "cannot read"));
  return lines;
}

std::map<std::string, int32_t> index_of(const std::vector<std::string>& classes) {
  std::map<std::string, int32_t> index;
  for (size_t i = 0; i < classes.size(); ++i) index[classes[i]] = static_cast<int32_t>(i);
  return index;
}

class FileListStore : public EncodedStore {
 public:
  explicit FileListStore(ImageFileList list) : list_(std::move(list)) {}

  int64_t size() const override { return static_cast<int64_t>(list_.files.size()); }
  int32_t label(int64_t example) const override { return list_.labels[example]; }
  std::string name(int64_t example) const override { return list_.files[example]; }
  void read(int64_t example, std::vector<uint8_t>* bytes) const override {
    read_whole_file(list_.files[example], bytes);
  }
  std::string description() const override {
    return list_.format + " " + list_.origin + ": " + std::to_string(size()) + " images of " +
           std::to_string(list_.classes.size()) + " classes";
  }

 private:
  ImageFileList list_;
};

}  // namespace

ImageFileList list_image_folder(const std::string& split_dir,
                                const std::vector<std::string>* classes) {
  ImageFileList list;
  list.format = "IMAGE_FOLDER";
  list.origin = split_dir;
  const std::vector<std::string> folders = read_folder(split_dir).folders;
  if (folders.empty()) throw InputError(split_dir + ": no class folders");
  list.classes = classes != nullptr ? *classes : folders;
  const std::map<std::string, int32_t> label_of = index_of(list.classes);
  for (const std::string& folder : folders) {
    const auto label = label_of.find(folder);
    if (label == label_of.end()) {
      throw InputError(split_dir + "/" + folder +
                       ": a class the training split does not have (its folder is absent there)");
    }
    for (std::string& path : class_images(split_dir + "/" + folder)) {
      list.files.push_back(std::move(path));
      list.labels.push_back(label->second);
    }
  }
  return list;
}

ImageFileList list_food101(const std::string& root, bool train) {
  ImageFileList list;
  list.format = "FOOD101";
  list.origin = root + (train ? "/meta/train.txt" : "/meta/test.txt");
  list.classes = read_lines(root + "/meta/classes.txt");
  if (list.classes.empty()) throw InputError(root + "/meta/classes.txt: lists no classes");
  const std::map<std::string, int32_t> label_of = index_of(list.classes);
  const std::vector<std::string> entries = read_lines(list.origin);
  for (size_t line = 0; line < entries.size(); ++line) {
    const std::string& entry = entries[line];
    const size_t slash = entry.find('/');
    const auto label =
        slash == std::string::npos ? label_of.end() : label_of.find(entry.substr(0, slash));
    if (label == label_of.end()) {
      throw InputError(list.origin + ": line " + std::to_string(line + 1) + " '" + entry +
                       "' is not <class>/<id> with a class of meta/classes.txt");
    }
    list.files.push_back(root + "/images/" + entry + ".jpg");
    list.labels.push_back(label->second);
  }
  if (list.files.empty()) throw InputError(list.origin + ": lists no images");
  return list;
}

ImageFileList list_tiny_imagenet(const std::string& root, bool train) {
  ImageFileList list;
  list.format = "TINY_IMAGENET";
  list.classes = read_lines(root + "/wnids.txt");
  if (list.classes.empty()) throw InputError(root + "/wnids.txt: lists no classes");
  std::sort(list.classes.begin(), list.classes.end());
  const std::map<std::string, int32_t> label_of = index_of(list.classes);
  if (train) {
    list.origin = root + "/train";
    for (size_t label = 0; label < list.classes.size(); ++label) {
      const std::string images = root + "/train/" + list.classes[label] + "/images";
      for (const std::string& file : read_folder(images).files) {
        if (!is_supported_image(file)) continue;
        list.files.push_back(images + "/" + file);
        list.labels.push_back(static_cast<int32_t>(label));
      }
    }
  } else {
    list.origin = root + "/val/val_annotations.txt";
    std::map<std::string, int32_t> label_of_file;  // sorted by name
    const std::vector<std::string> lines = read_lines(list.origin);
    for (size_t line = 0; line < lines.size(); ++line) {
      const size_t tab = lines[line].find('\t');
      const size_t tab2 = tab == std::string::npos ? tab : lines[line].find('\t', tab + 1);
      const auto label = tab == std::string::npos
                             ? label_of.end()
                             : label_of.find(lines[line].substr(tab + 1, tab2 - tab - 1));
      if (label == label_of.end()) {
        throw InputError(list.origin + ": line " + std::to_string(line + 1) +
                         " is not <file> TAB <wnid of wnids.txt> ...");
      }
      label_of_file[lines[line].substr(0, tab)] = label->second;
    }
    for (const auto& [file, label] : label_of_file) {
      list.files.push_back(root + "/val/images/" + file);
      list.labels.push_back(label);
    }
  }
  if (list.files.empty()) throw InputError(list.origin + ": holds no images");
  return list;
}

std::unique_ptr<EncodedStore> file_list_store(ImageFileList list) {
  return std::make_unique<FileListStore>(std::move(list));
}

}  // namespace dgqa
