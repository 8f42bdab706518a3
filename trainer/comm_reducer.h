// The model's Reducer (model/reducer.h) backed by the job's Communicator.
#pragma once

#include "comm/communicator.h"
#include "model/reducer.h"

namespace dgqa {

class CommReducer : public Reducer {
 public:
  CommReducer(Communicator& comm, const char* what) : comm_(comm), what_(what) {}
  void sum(float* values, int count) override { comm_.all_reduce_sum(values, count, what_); }

 private:
  Communicator& comm_;
  const char* what_;  // names the collective in timeout and error messages
};

}  // namespace dgqa
