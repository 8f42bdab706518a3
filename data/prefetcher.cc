#include "data/prefetcher.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <stdexcept>
#include <utility>

namespace dgqa {

namespace {

// Workers run at a lower priority than the trainer's threads (nice 10 on Linux, which sets it
// per thread): where cores are shared, the compute threads preempt a worker, not the other way
// round. On the CPU backend a preempted OpenMP thread stalls its whole team at the next
// barrier, which cost the training far more than the worker's own time.
void lower_thread_priority() {
#ifdef __linux__
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 10);
#endif
}

}  // namespace

Prefetcher::Prefetcher(PlanBatch plan, FillSlot fill, int depth, int workers)
    : plan_(std::move(plan)), fill_(std::move(fill)), depth_(depth), workers_(workers) {}

Prefetcher::~Prefetcher() {
  stop();
}

void Prefetcher::start(int64_t first, int64_t end) {
  stop();
  next_ = next_to_plan_ = first;
  end_ = end;
  if (!threaded() || first >= end) return;
  for (int i = 0; i < workers_; ++i) workers_threads_.emplace_back(&Prefetcher::work, this);
}

Batch Prefetcher::make_here(int64_t index) {
  Batch batch = plan_(index);
  for (int slot = 0; slot < batch.size; ++slot) fill_(&batch, slot);
  return batch;
}

Batch Prefetcher::take() {
  if (finished()) throw std::logic_error("Prefetcher: take() past the end of the run");
  if (!threaded()) {
    Batch batch = make_here(next_);
    ++next_;  // only once made: a failed batch fails again on the next take(), as with threads
    return batch;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  batch_ready_.wait(lock,
                    [&] { return !in_flight_.empty() && in_flight_.front().unfinished == 0; });
  InFlight& oldest = in_flight_.front();
  if (oldest.error) std::rethrow_exception(oldest.error);
  Batch batch = std::move(oldest.batch);
  in_flight_.pop_front();
  ++next_;
  lock.unlock();
  work_ready_.notify_all();
  return batch;
}

Prefetcher::InFlight* Prefetcher::next_job() {
  for (InFlight& job : in_flight_) {
    if (!job.error && job.next_slot < job.batch.size) return &job;
  }
  if (failed_ || next_to_plan_ >= end_ || static_cast<int>(in_flight_.size()) >= depth_) {
    return nullptr;
  }
  InFlight& job = in_flight_.emplace_back();
  job.index = next_to_plan_++;
  try {
    job.batch = plan_(job.index);
  } catch (...) {
    job.error = std::current_exception();
    failed_ = true;
  }
  job.unfinished = job.error ? 0 : job.batch.size;
  if (job.unfinished == 0) {  // failed or empty: complete as planned
    batch_ready_.notify_all();
    return next_job();
  }
  return &job;
}

void Prefetcher::work() {
  lower_thread_priority();
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    InFlight* job = next_job();
    if (job == nullptr) {
      work_ready_.wait(lock);
      continue;
    }
    const int slot = job->next_slot++;
    lock.unlock();
    std::exception_ptr error;
    try {
      fill_(&job->batch, slot);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error) {
      if (!job->error) job->error = error;
      job->unfinished -= job->batch.size - job->next_slot;  // its other slots are abandoned
      job->next_slot = job->batch.size;
      failed_ = true;
    }
    if (--job->unfinished == 0) batch_ready_.notify_all();
  }
}

void Prefetcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_ready_.notify_all();
  for (std::thread& worker : workers_threads_) worker.join();
  // The workers are gone: nothing else touches the shared state now.
  workers_threads_.clear();
  next_ = end_ = next_to_plan_ = 0;
  in_flight_.clear();
  failed_ = false;
  stop_ = false;
}

}  // namespace dgqa
