#include "trainer/metrics.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/atomic_file.h"
#include "common/error.h"

namespace dgqa {

MetricsWriter::MetricsWriter(const std::string& path) {
  if (path.empty()) return;
  file_ = std::fopen(path.c_str(), "a");
  if (file_ == nullptr) {
    throw InputError("cannot open " + path + " for writing: " + std::strerror(errno));
  }
}

MetricsWriter::~MetricsWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void MetricsWriter::write(const nlohmann::json& record) {
  if (file_ == nullptr) return;
  const std::string line = record.dump() + "\n";
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);  // a crash or preemption loses at most the line being written
}

void MetricsWriter::train(const TrainRecord& r) {
  write({{"kind", "train"},
         {"step", r.step},
         {"epoch", r.epoch},
         {"loss", r.loss},
         {"lr", r.lr},
         {"grad_norm", r.grad_norm},
         {"images_per_sec", r.images_per_sec},
         {"top1", r.top1}});
}

void MetricsWriter::eval(int64_t step, const EvalResult& result, const EvalResult* ema) {
  nlohmann::json record = {{"kind", "eval"},      {"step", step},
                           {"loss", result.loss}, {"top1", result.top1},
                           {"top5", result.top5}, {"examples", result.examples}};
  if (ema) {
    record["ema_loss"] = ema->loss;
    record["ema_top1"] = ema->top1;
    record["ema_top5"] = ema->top5;
  }
  write(record);
}

void MetricsWriter::bad_images(int64_t step, int64_t count) {
  write({{"kind", "bad_images"}, {"step", step}, {"count", count}});
}

void MetricsWriter::allocation(int64_t step, const std::vector<std::vector<int>>& layers) {
  write({{"kind", "allocation"}, {"step", step}, {"layers", layers}});
}

// Floats are written as doubles: their shortest decimal form reads back as the same float.
void MetricsWriter::key_norms(int64_t step, const std::vector<std::vector<float>>& norms,
                              const std::vector<std::vector<float>>& cache_before) {
  nlohmann::json record = {{"kind", "key_norms"}, {"step", step}, {"layers", norms}};
  if (!cache_before.empty()) record["cache_before"] = cache_before;
  write(record);
}

void MetricsWriter::dgqa_cache(int64_t step, const std::vector<std::vector<float>>& caches) {
  write({{"kind", "dgqa_cache"}, {"step", step}, {"layers", caches}});
}

void truncate_metrics_after(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;  // no metrics yet
  std::string kept, line;
  while (std::getline(in, line)) {
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (record.is_object() && record.value("step", int64_t{0}) <= step) kept += line + "\n";
  }
  AtomicFileWriter out(path);
  out.append(kept.data(), kept.size());
  out.commit();
}

ProgressLine::ProgressLine(bool enabled)
    : enabled_(enabled), terminal_(isatty(STDERR_FILENO) != 0) {}

void ProgressLine::update(int64_t step, int64_t total_steps, double loss, double images_per_sec,
                          double seconds_left) {
  if (!enabled_) return;
  const int minutes = static_cast<int>(seconds_left) / 60;
  const int seconds = static_cast<int>(seconds_left) % 60;
  char text[160];
  std::snprintf(text, sizeof(text), "step %lld/%lld  loss %.4f  %.1f img/s  ETA %d:%02d",
                static_cast<long long>(step), static_cast<long long>(total_steps), loss,
                images_per_sec, minutes, seconds);
  if (terminal_) {
    std::fprintf(stderr, "\r\033[K%s", text);
    line_open_ = true;
  } else {
    std::fprintf(stderr, "%s\n", text);
  }
  std::fflush(stderr);
}

void ProgressLine::message(const std::string& text) {
  if (!enabled_) return;
  finish();
  std::fprintf(stderr, "%s\n", text.c_str());
  std::fflush(stderr);
}

void ProgressLine::finish() {
  if (line_open_) std::fprintf(stderr, "\n");
  line_open_ = false;
}

}  // namespace dgqa
