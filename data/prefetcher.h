// Makes numbered batches on a background thread ahead of the consumer, so that data
// preparation overlaps the trainer's compute.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "data/batch.h"

namespace dgqa {

class Prefetcher {
 public:
  using MakeBatch = std::function<Batch(int64_t index)>;

  // Keeps up to `depth` finished batches queued; depth 0 starts no thread and take() makes
  // each batch itself. make_batch is called from the background thread, so whatever it
  // reads must not change while a run is going.
  Prefetcher(MakeBatch make_batch, int depth);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Begins a run over batches first, first + 1, ..., end - 1, abandoning any previous run.
  void start(int64_t first, int64_t end);

  // The next batch of the run, in index order; waits for it when it is not ready yet.
  // Rethrows the exception make_batch threw for it (batches before it come out normally).
  // Throws std::logic_error past the end of the run.
  Batch take();

  // True when take() has returned every batch of the run.
  bool finished() const { return next_ >= end_; }

  // Ends the run: stops and joins the background thread, drops the batches it made.
  void stop();

 private:
  void produce(int64_t first, int64_t end);  // the background thread's loop

  MakeBatch make_batch_;
  int depth_;
  int64_t next_ = 0;  // the index take() returns next
  int64_t end_ = 0;

  // Shared with the background thread, under mutex_.
  std::mutex mutex_;
  std::condition_variable batch_ready_;  // take() waits for a batch or an error
  std::condition_variable room_ready_;   // produce() waits for room in the queue or a stop
  std::deque<Batch> ready_;
  std::exception_ptr error_;  // what making batch next_ + ready_.size() threw
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace dgqa
