// Makes numbered batches ahead of the consumer on a pool of worker threads, so that decoding
// and augmentation overlap the trainer's compute and use several cores.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "data/batch.h"

namespace dgqa {

class Prefetcher {
 public:
  // plan(index) returns batch `index` with its examples chosen and its buffers sized (cheap:
  // called under the queue's lock); fill(batch, slot) does the work for one example of it and
  // runs on the workers concurrently for different slots of the same or different batches.
  using PlanBatch = std::function<Batch(int64_t index)>;
  using FillSlot = std::function<void(Batch* batch, int slot)>;

  // Up to `depth` batches are planned and not yet taken at any time: memory is bounded by
  // depth batches whatever the dataset. `workers` threads fill them, each taking the next
  // unfilled slot of the oldest batch, so one slow image does not hold up the others. With
  // depth 0 or workers 0 no thread starts and take() makes each batch itself.
  Prefetcher(PlanBatch plan, FillSlot fill, int depth, int workers);
  ~Prefetcher();
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Begins a run over batches first, first + 1, ..., end - 1, abandoning any previous run.
  void start(int64_t first, int64_t end);

  // The next batch of the run, in index order; waits for it when it is not ready yet.
  // Rethrows the first exception plan or fill threw for it (batches before it come out
  // normally). Throws std::logic_error past the end of the run.
  Batch take();

  // True when take() has returned every batch of the run.
  bool finished() const { return next_ >= end_; }

  // Ends the run: stops and joins the workers, drops the batches they made.
  void stop();

 private:
  // A planned batch and the progress of its slots, under mutex_.
  struct InFlight {
    int64_t index = 0;
    Batch batch;
    int next_slot = 0;   // the next slot a worker takes
    int unfinished = 0;  // slots not yet filled
    std::exception_ptr error;
  };

  Batch make_here(int64_t index);  // without threads
  InFlight* next_job();            // the batch with a slot to fill, or nullptr; under mutex_
  void work();                     // a worker's loop
  bool threaded() const { return depth_ > 0 && workers_ > 0; }

  PlanBatch plan_;
  FillSlot fill_;
  int depth_, workers_;
  int64_t next_ = 0;  // the index take() returns next
  int64_t end_ = 0;

  // Shared with the workers, under mutex_. std::deque keeps references to its elements valid
  // across push_back and pop_front, so a worker may fill a slot without the lock.
  std::mutex mutex_;
  std::condition_variable batch_ready_;  // take() waits for the oldest batch to be complete
  std::condition_variable work_ready_;   // workers wait for a slot or room for a new batch
  std::deque<InFlight> in_flight_;       // planned, not yet taken, in index order
  int64_t next_to_plan_ = 0;
  bool failed_ = false;  // a batch failed: plan no more
  bool stop_ = false;
  std::vector<std::thread> workers_threads_;
};

}  // namespace dgqa
