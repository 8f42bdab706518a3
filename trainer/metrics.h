// OUT/metrics.jsonl (one JSON object a line) and the progress line people watch.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainer/evaluate.h"

namespace dgqa {

// A `train` record: the step's values and the throughput and top-1 over the logging interval.
struct TrainRecord {
  int64_t step = 0, epoch = 0;
  double loss = 0, lr = 0, grad_norm = 0;
  double images_per_sec = 0;
  double top1 = 0;  // training images of the interval whose first largest logit is the label
};

class MetricsWriter {
 public:
  // Opens path for appending (an empty path writes nothing). Throws InputError if it cannot.
  explicit MetricsWriter(const std::string& path);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void train(const TrainRecord& record);
  // An `eval` record; with `ema` (the weight EMA's evaluation), also its ema_loss, ema_top1 and
  // ema_top5.
  void eval(int64_t step, const EvalResult& result, const EvalResult* ema = nullptr);
  void allocation(int64_t step, const std::vector<std::vector<int>>& layers);
  // Per layer, the key norms that decided the step's allocation, and for DGQA the caches they
  // were compared with (cache_before empty otherwise).
  void key_norms(int64_t step, const std::vector<std::vector<float>>& norms,
                 const std::vector<std::vector<float>>& cache_before);
  // Per layer, the DGQA cache after the step.
  void dgqa_cache(int64_t step, const std::vector<std::vector<float>>& caches);
  // Unreadable training images replaced since the last record (data.bad_image: SKIP).
  void bad_images(int64_t step, int64_t count);

 private:
  void write(const nlohmann::json& record);
  std::FILE* file_ = nullptr;
};

// Drops the records after `step` from a metrics file (a resumed run continues after its
// checkpoint's step, and the records an interrupted run wrote past it would repeat). Atomic.
void truncate_metrics_after(const std::string& path, int64_t step);

// A single self-updating line on a terminal; plain lines when stderr is not a terminal.
// A disabled one (ranks other than 0) prints nothing.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled = true);
  void update(int64_t step, int64_t total_steps, double loss, double images_per_sec,
              double seconds_left);
  void message(const std::string& text);  // a line of its own, keeping the progress intact
  void finish();

 private:
  bool enabled_;
  bool terminal_;
  bool line_open_ = false;
};

}  // namespace dgqa
