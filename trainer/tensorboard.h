// TensorBoard's view of a training run (docs/design.md §7.6): with train.tensorboard, rank 0
// writes the scalars of each step into OUT/tensorboard/events.out.tfevents.<seconds>.<host>
// (io/event_file.h), a new file each time the run starts or resumes. The trainer adds the
// step's scalars one call each as it computes them, then writes them as one event.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/event_file.h"
#include "trainer/config.h"

namespace dgqa {

class TensorBoardLog {
 public:
  // Writes into a new event file under dir, creating dir. An empty dir writes nothing, and every
  // call below then does nothing. Throws InputError naming the path it cannot create.
  explicit TensorBoardLog(const std::string& dir);

  // Adds a scalar ("train/loss") to the event of the step being collected.
  void scalar(const std::string& tag, double value);
  // One scalar per layer l and K/V head g: <name>/layer_<l>/kv_<g> (the allocation's query
  // heads, the key norms, DGQA's caches).
  template <typename Value>
  void per_kv_head(const std::string& name, const std::vector<std::vector<Value>>& layers) {
    for (size_t l = 0; l < layers.size(); ++l) {
      for (size_t g = 0; g < layers[l].size(); ++g) {
        scalar(name + "/layer_" + std::to_string(l) + "/kv_" + std::to_string(g), layers[l][g]);
      }
    }
  }
  // Writes the scalars added since the last call, if any, as the event of `step`, flushed.
  void write_step(int64_t step);

 private:
  std::unique_ptr<EventFileWriter> file_;
  std::vector<TensorBoardScalar> scalars_;
};

// Where rank `rank` writes event files: OUT/tensorboard on rank 0 when the config asks for them
// and there is an OUT, else "" (none).
std::string tensorboard_dir(const config::Config& config, const std::string& out_dir, int rank);

// Cuts every event file under dir back to `step` (truncate_event_file_after), so that a run
// resumed from the checkpoint of that step writes each later step once. Nothing when dir does
// not exist.
void truncate_tensorboard_after(const std::string& dir, int64_t step);

}  // namespace dgqa
