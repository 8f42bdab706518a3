#include "data/tar_shards.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "common/error.h"

namespace dgqa {
namespace {

constexpr int64_t kBlock = 512;
constexpr int64_t kMaxClsBytes = 64;

std::string lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// Whether text is one or more ASCII digits.
bool is_decimal(const std::string& text) {
  return !text.empty() &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// ---- Shard lists ----------------------------------------------------------------------------

// Where a shard list comes from (named in errors) and how large it may grow.
struct ShardList {
  const std::string& field;
  const ShardListLimits& limits;
};

// Refuses a list of `names` paths of `bytes` bytes in all. In doubles: the sizes of large groups
// multiplied may overflow 64 bits, and the limits are far below 2^53.
void check_shard_list_size(double names, double bytes, const ShardList& list) {
  if (names > static_cast<double>(list.limits.max_shards)) {
    throw InputError(list.field + ": names more than " + std::to_string(list.limits.max_shards) +
                     " shards");
  }
  const int64_t max_bytes = list.limits.max_path_bytes;
  if (bytes > static_cast<double>(max_bytes)) {
    const bool mib = max_bytes % (1 << 20) == 0;
    throw InputError(list.field + ": names more than " +
                     std::to_string(mib ? max_bytes >> 20 : max_bytes) + (mib ? " MiB" : " bytes") +
                     " of shard paths");
  }
}

double total_length(const std::vector<std::string>& texts) {
  double length = 0;
  for (const std::string& text : texts) length += static_cast<double>(text.size());
  return length;
}

// The strings one brace group stands for: a numeric range "low..high" or alternatives "a,b".
std::vector<std::string> brace_choices(const std::string& group, const ShardList& list) {
  std::vector<std::string> choices;
  const size_t dots = group.find("..");
  if (dots == std::string::npos) {
    size_t start = 0;
    for (size_t comma; (comma = group.find(',', start)) != std::string::npos; start = comma + 1) {
      choices.push_back(group.substr(start, comma - start));
    }
    choices.push_back(group.substr(start));
    return choices;
  }
  const std::string low = group.substr(0, dots), high = group.substr(dots + 2);
  const bool digits = is_decimal(low) && is_decimal(high) && low.size() < 10 && high.size() < 10;
  if (!digits || std::stoll(low) > std::stoll(high)) {
    throw InputError(list.field + ": '{" + group + "}' is not a range {low..high} of numbers");
  }
  check_shard_list_size(static_cast<double>(std::stoll(high) - std::stoll(low) + 1), 0, list);
  const size_t width = (low[0] == '0' || high[0] == '0') ? std::max(low.size(), high.size()) : 0;
  for (long long i = std::stoll(low); i <= std::stoll(high); ++i) {
    std::string number = std::to_string(i);
    if (number.size() < width) number.insert(0, width - number.size(), '0');
    choices.push_back(number);
  }
  return choices;
}

// Every string the pattern stands for, the first group varying slowest, as braceexpand orders
// them.
std::vector<std::string> expand_braces(const std::string& pattern, const ShardList& list) {
  std::vector<std::string> expanded = {""};
  for (size_t at = 0;;) {
    const size_t open = pattern.find('{', at);
    if (open == std::string::npos) {
      if (pattern.find('}', at) != std::string::npos) {
        throw InputError(list.field + ": '" + pattern + "' has a '}' without '{'");
      }
      const std::string tail = pattern.substr(at);
      check_shard_list_size(static_cast<double>(expanded.size()),
                            total_length(expanded) + static_cast<double>(expanded.size()) *
                                                         static_cast<double>(tail.size()),
                            list);
      for (std::string& name : expanded) name += tail;
      return expanded;
    }
    const size_t close = pattern.find('}', open);
    if (close == std::string::npos)
      throw InputError(list.field + ": '" + pattern + "' has an open '{'");
    const std::vector<std::string> choices =
        brace_choices(pattern.substr(open + 1, close - open - 1), list);
    const std::string literal = pattern.substr(at, open - at);
    // Each name is followed by the literal and each choice in turn.
    const double n = static_cast<double>(expanded.size());
    const double m = static_cast<double>(choices.size());
    check_shard_list_size(n * m,
                          m * total_length(expanded) +
                              n * (m * static_cast<double>(literal.size()) + total_length(choices)),
                          list);
    std::vector<std::string> longer;
    longer.reserve(expanded.size() * choices.size());
    for (const std::string& name : expanded) {
      for (const std::string& choice : choices) longer.push_back(name + literal + choice);
    }
    expanded = std::move(longer);
    at = close + 1;
  }
}

// ---- Tar headers ----------------------------------------------------------------------------

struct Member {
  std::string name;
  char type = '0';
  int64_t offset = 0;  // of the data
  int64_t size = 0;
};

int64_t parse_number(const uint8_t* field, int length, bool* ok) {
  if (field[0] & 0x80) {  // base-256, for sizes of 8 GiB and more
    int64_t value = field[0] & 0x3f;
    for (int i = 1; i < length; ++i) {
      if (value > (INT64_MAX >> 8)) {
        *ok = false;
        return 0;
      }
      value = (value << 8) | field[i];
    }
    return value;
  }
  int64_t value = 0;
  int i = 0;
  while (i < length && field[i] == ' ') ++i;
  for (; i < length && field[i] >= '0' && field[i] <= '7'; ++i) {
    if (value > (INT64_MAX >> 3)) {
      *ok = false;
      return 0;
    }
    value = value * 8 + (field[i] - '0');
  }
  if (i < length && field[i] != ' ' && field[i] != '\0') *ok = false;
  return value;
}

bool checksum_matches(const uint8_t* header) {
  bool ok = true;
  const int64_t stored = parse_number(header + 148, 8, &ok);
  int64_t sum = 0;
  for (int i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : header[i];
  return ok && stored == sum;
}

std::string text_field(const uint8_t* field, size_t length) {
  const char* begin = reinterpret_cast<const char*>(field);
  return std::string(begin, strnlen(begin, length));
}

// The "path" record of a PAX extended header ("<length> path=<value>\n" records), or "".
std::string pax_path(const std::string& records) {
  size_t at = 0;
  while (at < records.size()) {
    const size_t space = records.find(' ', at);
    if (space == std::string::npos) break;
    const long long length = std::atoll(records.substr(at, space - at).c_str());
    if (length <= 0 || at + static_cast<size_t>(length) > records.size()) break;
    const std::string record = records.substr(space + 1, at + length - space - 2);
    if (record.rfind("path=", 0) == 0) return record.substr(5);
    at += static_cast<size_t>(length);
  }
  return "";
}

class ShardReader {
 public:
  explicit ShardReader(const std::string& path) : path_(path) {
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat info;
    if (fd_ < 0 || fstat(fd_, &info) != 0 || !S_ISREG(info.st_mode)) {
      const std::string reason = fd_ < 0 ? std::strerror(errno) : "not a regular file";
      if (fd_ >= 0) close(fd_);
      throw InputError(path + ": cannot open the shard (" + reason + ")");
    }
    size_ = info.st_size;
  }
  int release() { return std::exchange(fd_, -1); }
  ~ShardReader() {
    if (fd_ >= 0) close(fd_);
  }

  void read_at(int64_t offset, void* out, int64_t size) const {
    if (offset + size > size_)
      throw InputError(path_ + ": truncated (a member ends past the file)");
    pread_exactly(fd_, path_, offset, out, size);
  }

  // The next member at *offset (a file, after any long-name or PAX header), or false at the
  // end of the archive.
  bool next(int64_t* offset, Member* member) const {
    std::string long_name;
    while (true) {
      if (*offset + kBlock > size_) {
        if (*offset == size_ && *offset > 0) return false;  // no end blocks: tolerated
        throw InputError(path_ + ": truncated tar header at byte " + std::to_string(*offset));
      }
      uint8_t header[kBlock];
      read_at(*offset, header, kBlock);
      if (std::all_of(header, header + kBlock, [](uint8_t b) { return b == 0; })) return false;
      if (!checksum_matches(header)) {
        throw InputError(path_ + ": not a tar file (bad header checksum at byte " +
                         std::to_string(*offset) + ")");
      }
      bool ok = true;
      member->size = parse_number(header + 124, 12, &ok);
      if (!ok || member->size < 0) throw InputError(path_ + ": bad member size");
      member->type = static_cast<char>(header[156]);
      member->offset = *offset + kBlock;
      if (member->size > size_ - member->offset) {
        throw InputError(path_ + ": truncated (a member ends past the file)");
      }
      *offset = member->offset + (member->size + kBlock - 1) / kBlock * kBlock;
      if (member->type == 'L' || member->type == 'x') {  // the next member's name
        std::string data(static_cast<size_t>(std::min<int64_t>(member->size, 1 << 20)), '\0');
        read_at(member->offset, data.data(), static_cast<int64_t>(data.size()));
        long_name = member->type == 'L' ? std::string(data.c_str()) : pax_path(data);
        continue;
      }
      const std::string prefix = text_field(header + 345, 155);
      const bool ustar = std::memcmp(header + 257, "ustar", 5) == 0;
      member->name = !long_name.empty()         ? long_name
                     : ustar && !prefix.empty() ? prefix + "/" + text_field(header, 100)
                                                : text_field(header, 100);
      return true;
    }
  }

  static void pread_exactly(int fd, const std::string& path, int64_t offset, void* out,
                            int64_t size) {
    auto* bytes = static_cast<uint8_t*>(out);
    while (size > 0) {
      const ssize_t got = pread(fd, bytes, static_cast<size_t>(size), offset);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) {
        throw InputError(path + ": cannot read (" +
                         (got < 0 ? std::strerror(errno) : "the file shrank") + ")");
      }
      bytes += got;
      offset += got;
      size -= got;
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  int64_t size_ = 0;
};

// ---- The store ------------------------------------------------------------------------------

struct Sample {
  int32_t shard = 0;
  int32_t label = -1;
  int64_t offset = 0, size = -1;  // the image member's data
  std::string image;              // its name
};

class TarShardStore : public EncodedStore {
 public:
  TarShardStore(std::vector<std::string> paths, std::vector<int> fds, std::vector<Sample> samples)
      : paths_(std::move(paths)), fds_(std::move(fds)), samples_(std::move(samples)) {
    for (const Sample& s : samples_) classes_ = std::max(classes_, int64_t{s.label} + 1);
  }
  ~TarShardStore() override {
    for (int fd : fds_) close(fd);
  }

  int64_t size() const override { return static_cast<int64_t>(samples_.size()); }
  int32_t label(int64_t example) const override { return samples_[example].label; }
  std::string name(int64_t example) const override {
    return paths_[samples_[example].shard] + ": " + samples_[example].image;
  }
  void read(int64_t example, std::vector<uint8_t>* bytes) const override {
    const Sample& s = samples_[example];
    bytes->resize(static_cast<size_t>(s.size));
    ShardReader::pread_exactly(fds_[s.shard], name(example), s.offset, bytes->data(), s.size);
  }
  std::string description() const override {
    return "TAR_SHARDS " + std::to_string(paths_.size()) + " shards (" + paths_.front() +
           " ...): " + std::to_string(size()) + " images, labels < " + std::to_string(classes_);
  }

 private:
  std::vector<std::string> paths_;
  std::vector<int> fds_;
  std::vector<Sample> samples_;
  int64_t classes_ = 0;
};

bool is_image_extension(const std::string& ext) {
  return ext == "jpg" || ext == "jpeg" || ext == "png";
}

int32_t parse_label(const ShardReader& shard, const std::string& where, const Member& member) {
  if (member.size > kMaxClsBytes)
    throw InputError(where + ": a .cls member of " + std::to_string(member.size) + " bytes");
  std::string text(static_cast<size_t>(member.size), '\0');
  shard.read_at(member.offset, text.data(), member.size);
  const size_t first = text.find_first_not_of(" \t\r\n");
  const size_t last = text.find_last_not_of(" \t\r\n");
  const std::string digits = first == std::string::npos ? "" : text.substr(first, last - first + 1);
  if (digits.size() > 9 || !is_decimal(digits)) {
    throw InputError(where + ": the class '" + text + "' is not a non-negative integer");
  }
  return static_cast<int32_t>(std::stol(digits));
}

// Adds the samples of one shard to *samples.
void index_shard(const ShardReader& shard, const std::string& path, int32_t shard_index,
                 std::vector<Sample>* samples) {
  std::string key;
  Sample sample;
  bool has_sample = false;
  const auto finish = [&] {
    if (!has_sample) return;
    if (sample.size < 0) throw InputError(path + ": sample '" + key + "' has no .jpg/.png image");
    if (sample.label < 0) throw InputError(path + ": sample '" + key + "' has no .cls member");
    samples->push_back(std::move(sample));
    sample = Sample{};
    has_sample = false;
  };
  int64_t offset = 0;
  Member member;
  while (shard.next(&offset, &member)) {
    if (member.type == '5') continue;  // a folder
    if (member.type != '0' && member.type != '\0' && member.type != '7') {
      throw InputError(path + ": member '" + member.name +
                       "' is not a regular file (links and devices are not samples)");
    }
    const size_t slash = member.name.rfind('/');
    const size_t dot = member.name.find('.', slash == std::string::npos ? 0 : slash + 1);
    if (dot == std::string::npos) continue;  // no extension: not part of a sample
    const std::string member_key = member.name.substr(0, dot);
    const std::string ext = lower(member.name.substr(dot + 1));
    if (!has_sample || member_key != key) {
      finish();
      key = member_key;
      sample.shard = shard_index;
      has_sample = true;
    }
    const std::string where = path + ": " + member.name;
    if (is_image_extension(ext)) {
      if (sample.size >= 0) throw InputError(where + ": a second image for sample '" + key + "'");
      sample.offset = member.offset;
      sample.size = member.size;
      sample.image = member.name;
    } else if (ext == "cls") {
      sample.label = parse_label(shard, where, member);
    }
  }
  finish();
}

}  // namespace

std::vector<std::string> expand_shard_list(const std::string& patterns, const std::string& root,
                                           const std::string& field,
                                           const ShardListLimits& limits) {
  const ShardList list{field, limits};
  const auto under_root = [&](const std::string& path) { return !root.empty() && path[0] != '/'; };
  std::vector<std::string> shards;
  double bytes = 0;
  size_t at = 0;
  while ((at = patterns.find_first_not_of(" \t\n", at)) != std::string::npos) {
    const size_t end = std::min(patterns.find_first_of(" \t\n", at), patterns.size());
    std::vector<std::string> paths = expand_braces(patterns.substr(at, end - at), list);
    for (const std::string& path : paths) {
      bytes += static_cast<double>(path.size() + (under_root(path) ? root.size() + 1 : 0));
    }
    check_shard_list_size(static_cast<double>(shards.size() + paths.size()), bytes, list);
    for (std::string& path : paths) {
      shards.push_back(under_root(path) ? root + "/" + path : std::move(path));
    }
    at = end;
  }
  if (shards.empty()) throw InputError(field + ": names no shards");
  return shards;
}

std::unique_ptr<EncodedStore> open_tar_shards(const std::vector<std::string>& shards) {
  std::vector<Sample> samples;
  std::vector<int> fds;
  try {
    for (size_t i = 0; i < shards.size(); ++i) {
      ShardReader shard(shards[i]);
      index_shard(shard, shards[i], static_cast<int32_t>(i), &samples);
      fds.push_back(shard.release());
    }
  } catch (...) {
    for (int fd : fds) close(fd);
    throw;
  }
  if (samples.empty()) throw InputError(shards.front() + " ...: the shards hold no samples");
  return std::make_unique<TarShardStore>(shards, std::move(fds), std::move(samples));
}

}  // namespace dgqa
