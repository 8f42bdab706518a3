#include "data/prefetcher.h"

#include <stdexcept>
#include <utility>

namespace dgqa {

Prefetcher::Prefetcher(MakeBatch make_batch, int depth)
    : make_batch_(std::move(make_batch)), depth_(depth) {}

Prefetcher::~Prefetcher() {
  stop();
}

void Prefetcher::start(int64_t first, int64_t end) {
  stop();
  next_ = first;
  end_ = end;
  if (depth_ > 0 && first < end) worker_ = std::thread(&Prefetcher::produce, this, first, end);
}

Batch Prefetcher::take() {
  if (finished()) throw std::logic_error("Prefetcher: take() past the end of the run");
  if (depth_ == 0) {
    Batch batch = make_batch_(next_);
    ++next_;  // only once made: a failed batch fails again on the next take(), as with a thread
    return batch;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  batch_ready_.wait(lock, [&] { return !ready_.empty() || error_ != nullptr; });
  if (ready_.empty()) std::rethrow_exception(error_);
  Batch batch = std::move(ready_.front());
  ready_.pop_front();
  ++next_;
  lock.unlock();
  room_ready_.notify_one();
  return batch;
}

void Prefetcher::produce(int64_t first, int64_t end) {
  try {
    for (int64_t index = first; index < end; ++index) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        room_ready_.wait(lock, [&] { return stop_ || static_cast<int>(ready_.size()) < depth_; });
        if (stop_) return;
      }
      Batch batch = make_batch_(index);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ready_.push_back(std::move(batch));
      }
      batch_ready_.notify_one();
    }
  } catch (...) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = std::current_exception();
    }
    batch_ready_.notify_one();
  }
}

void Prefetcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  room_ready_.notify_one();
  if (worker_.joinable()) worker_.join();
  // The thread is gone: nothing else touches the shared state now.
  next_ = end_ = 0;
  ready_.clear();
  error_ = nullptr;
  stop_ = false;
}

}  // namespace dgqa
