// The collectives of make_communicator's Communicator (docs/design.md §5). CTest runs this
// program under mpirun with 2 and 4 ranks (comm_mpi_2ranks, comm_mpi_4ranks) and, like every
// test program, plainly, where the single-process communicator must meet the same expectations.
// Every rank runs every test, in the same order; inputs depend on the rank, so each rank can
// compute the expected result of every collective.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "comm/communicator.h"
#include "comm/launch_env.h"
#include "comm/mpi_communicator.h"
#include "tests/communicator_environment.h"

namespace dgqa {
namespace {

using tests::comm;

// Ranks other than 0 print only their failures, tagged with the rank, so that the output of a
// run is read once.
class FailurePrinter : public ::testing::EmptyTestEventListener {
 public:
  explicit FailurePrinter(int rank) : rank_(rank) {}
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] %s:%d: %s\n", rank_,
                 result.file_name() ? result.file_name() : "?", result.line_number(),
                 result.summary());
  }

 private:
  int rank_;
};

bool quiet_ranks_other_than_zero() {
  const int rank = detect_rank_info().rank;
  if (rank == 0) return false;
  ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
  delete listeners.Release(listeners.default_result_printer());
  listeners.Append(new FailurePrinter(rank));
  return true;
}

[[maybe_unused]] const bool quiet_ranks = quiet_ranks_other_than_zero();

// Small integers, so every float sum below is exact whatever the order of reduction.
float input(int rank, int64_t index) {
  return static_cast<float>((index % 97) * (rank + 1) + rank);
}

float expected_sum(int world_size, int64_t index) {
  const int64_t w = world_size;
  return static_cast<float>((index % 97) * w * (w + 1) / 2 + w * (w - 1) / 2);
}

std::vector<float> inputs(int64_t count, int rank) {
  std::vector<float> values(count);
  for (int64_t i = 0; i < count; ++i) values[i] = input(rank, i);
  return values;
}

// The index of the first element that is not the expected sum, or -1.
int64_t first_wrong_sum(const std::vector<float>& values, int world_size) {
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i] != expected_sum(world_size, static_cast<int64_t>(i)))
      return static_cast<int64_t>(i);
  }
  return -1;
}

// A communicator that splits collectives into chunks of 2^20 elements, so that a few megabytes
// exercise what a buffer above INT_MAX elements needs. Only MPI splits: at one rank there is
// nothing to split, and the program's communicator is used.
std::unique_ptr<Communicator> make_chunking_communicator() {
  if (comm().world_size() == 1) return nullptr;
  return make_mpi_communicator(comm().info(), tests::kCommunicatorTimeoutS, int64_t{1} << 20);
}

TEST(CommunicatorTest, RankAndSizeComeFromTheLauncher) {
  const RankInfo launched = detect_rank_info();
  EXPECT_EQ(comm().rank(), launched.rank);
  EXPECT_EQ(comm().world_size(), launched.world_size);
  EXPECT_EQ(comm().info().local_rank, launched.local_rank);
  EXPECT_EQ(comm().info().launcher, launched.launcher);
  // The tests' mpirun starts every rank on this machine.
  EXPECT_EQ(comm().info().local_size, comm().world_size());
}

TEST(CommunicatorTest, AllReduceSum) {
  std::vector<float> values = inputs(1000, comm().rank());
  comm().all_reduce_sum(values.data(), static_cast<int64_t>(values.size()), "test all-reduce");
  EXPECT_EQ(first_wrong_sum(values, comm().world_size()), -1);
}

TEST(CommunicatorTest, AllReduceOfNothing) {
  comm().all_reduce_sum(nullptr, 0, "test empty all-reduce");
  comm().wait(*comm().all_reduce_sum_async(nullptr, 0, "test empty async all-reduce"));
}

TEST(CommunicatorTest, AsyncAllReducesInFlightWaitedInAnotherOrder) {
  const int64_t counts[] = {17, 4096, 100003};
  std::vector<std::vector<float>> buffers;
  std::vector<std::unique_ptr<PendingCollective>> pending;
  for (int64_t count : counts) buffers.push_back(inputs(count, comm().rank()));
  for (auto& buffer : buffers) {
    pending.push_back(comm().all_reduce_sum_async(
        buffer.data(), static_cast<int64_t>(buffer.size()), "test async all-reduce"));
  }
  for (int index : {2, 0, 1}) comm().wait(*pending[index]);
  comm().wait(*pending[0]);  // waiting again for a completed collective does nothing
  for (const auto& buffer : buffers) EXPECT_EQ(first_wrong_sum(buffer, comm().world_size()), -1);
}

TEST(CommunicatorTest, AsyncAllReduceCompletedByTests) {
  std::vector<float> values = inputs(50000, comm().rank());
  std::unique_ptr<PendingCollective> pending =
      comm().all_reduce_sum_async(values.data(), 50000, "test polled all-reduce");
  while (!comm().test(*pending)) {
  }
  EXPECT_TRUE(comm().test(*pending));
  EXPECT_EQ(first_wrong_sum(values, comm().world_size()), -1);
}

TEST(CommunicatorTest, LargeAllReduceInChunks) {
  std::unique_ptr<Communicator> chunking = make_chunking_communicator();
  Communicator& communicator = chunking ? *chunking : comm();
  std::vector<float> values = inputs(3'000'001, communicator.rank());
  communicator.all_reduce_sum(values.data(), static_cast<int64_t>(values.size()),
                              "test large all-reduce");
  EXPECT_EQ(first_wrong_sum(values, communicator.world_size()), -1);

  values = inputs(3'000'001, communicator.rank());
  std::unique_ptr<PendingCollective> pending = communicator.all_reduce_sum_async(
      values.data(), static_cast<int64_t>(values.size()), "test large async all-reduce");
  communicator.wait(*pending);
  EXPECT_EQ(first_wrong_sum(values, communicator.world_size()), -1);
}

// The root's bytes: a pattern that depends on the root, so a broadcast from the wrong rank shows.
std::vector<unsigned char> root_bytes(int root, size_t size) {
  std::vector<unsigned char> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<unsigned char>(i * 7 + root * 31 + 1);
  return bytes;
}

void check_broadcast(Communicator& communicator, int root, size_t size) {
  std::vector<unsigned char> bytes =
      communicator.rank() == root ? root_bytes(root, size) : std::vector<unsigned char>(size, 0);
  communicator.broadcast(bytes.data(), static_cast<int64_t>(size), root, "test broadcast");
  EXPECT_TRUE(bytes == root_bytes(root, size)) << "broadcast of " << size << " bytes from " << root;
}

TEST(CommunicatorTest, BroadcastFromRankZero) {
  check_broadcast(comm(), 0, 1001);
}

TEST(CommunicatorTest, BroadcastFromRankOne) {
  if (comm().world_size() < 2) GTEST_SKIP() << "one rank";
  check_broadcast(comm(), 1, 1001);
}

TEST(CommunicatorTest, BroadcastFromLastRank) {
  check_broadcast(comm(), comm().world_size() - 1, 7);
}

TEST(CommunicatorTest, LargeBroadcastInChunks) {
  std::unique_ptr<Communicator> chunking = make_chunking_communicator();
  check_broadcast(chunking ? *chunking : comm(), 0, 3'000'001);
}

// Each rank swaps `size` bytes with rank W - 1 - r (itself in the middle of an odd world), as
// the mixup exchange does: it receives the peer's pattern and keeps its own.
void check_send_receive(Communicator& communicator, size_t size) {
  const int peer = communicator.world_size() - 1 - communicator.rank();
  const std::vector<unsigned char> mine = root_bytes(communicator.rank(), size);
  std::vector<unsigned char> received(size, 0);
  communicator.send_receive(mine.data(), received.data(), static_cast<int64_t>(size), peer,
                            "test send_receive");
  EXPECT_TRUE(received == root_bytes(peer, size)) << size << " bytes from rank " << peer;
  EXPECT_TRUE(mine == root_bytes(communicator.rank(), size));
}

TEST(CommunicatorTest, SendReceiveSwapsWithThePeer) {
  check_send_receive(comm(), 1001);
  check_send_receive(comm(), 0);
  comm().barrier("test barrier after send_receive");  // the collectives still match
}

TEST(CommunicatorTest, LargeSendReceiveInChunks) {
  std::unique_ptr<Communicator> chunking = make_chunking_communicator();
  check_send_receive(chunking ? *chunking : comm(), 3'000'001);
}

TEST(CommunicatorTest, AllGather) {
  const auto value_of = [](int rank) { return (uint64_t{1} << 40) + uint64_t(rank) * 1000 + 7; };
  const std::vector<uint64_t> values = comm().all_gather(value_of(comm().rank()), "test gather");
  ASSERT_EQ(values.size(), static_cast<size_t>(comm().world_size()));
  for (int rank = 0; rank < comm().world_size(); ++rank) EXPECT_EQ(values[rank], value_of(rank));
}

// Every rank's inputs reduced to each root in turn, several in flight: the root holds the sum,
// the other ranks their own values.
TEST(CommunicatorTest, ReduceSumToEachRoot) {
  const int world = comm().world_size();
  std::vector<std::vector<float>> buffers;
  std::vector<std::unique_ptr<PendingCollective>> pending;
  for (int root = 0; root < world; ++root) buffers.push_back(inputs(1000 + root, comm().rank()));
  for (int root = 0; root < world; ++root) {
    pending.push_back(comm().reduce_sum_async(
        buffers[root].data(), static_cast<int64_t>(buffers[root].size()), root, "test reduce"));
  }
  for (int root = world - 1; root >= 0; --root) comm().wait(*pending[root]);
  for (int root = 0; root < world; ++root) {
    if (root == comm().rank()) {
      EXPECT_EQ(first_wrong_sum(buffers[root], world), -1) << "root " << root;
    } else {
      EXPECT_TRUE(buffers[root] == inputs(1000 + root, comm().rank())) << "root " << root;
    }
  }
}

TEST(CommunicatorTest, LargeReduceInChunks) {
  std::unique_ptr<Communicator> chunking = make_chunking_communicator();
  Communicator& communicator = chunking ? *chunking : comm();
  const int root = communicator.world_size() - 1;
  std::vector<float> values = inputs(3'000'001, communicator.rank());
  communicator.wait(*communicator.reduce_sum_async(
      values.data(), static_cast<int64_t>(values.size()), root, "test large reduce"));
  if (communicator.rank() == root) {
    EXPECT_EQ(first_wrong_sum(values, communicator.world_size()), -1);
  }
}

// Uneven ranges, one of them empty where there are several ranks: each rank starts with only
// its own range filled in (the rest holds garbage) and ends with every range's values.
void check_all_gather_ranges(Communicator& communicator, int64_t unit) {
  const int world = communicator.world_size();
  std::vector<int64_t> bounds = {3};  // data before the first range is not touched
  for (int rank = 0; rank < world; ++rank) {
    bounds.push_back(bounds.back() + (rank == 1 ? 0 : unit * (rank + 1) + 5));
  }
  const auto value = [](int64_t index) { return static_cast<float>(index % 1000) + 0.5f; };
  std::vector<float> data(bounds.back() + 2, -1.f);
  const int me = communicator.rank();
  for (int64_t i = bounds[me]; i < bounds[me + 1]; ++i) data[i] = value(i);
  communicator.all_gather_ranges(data.data(), bounds, "test all-gather of ranges");
  for (int64_t i = 0; i < static_cast<int64_t>(data.size()); ++i) {
    const bool gathered = i >= bounds.front() && i < bounds.back();
    ASSERT_EQ(data[i], gathered ? value(i) : -1.f) << "element " << i;
  }
}

TEST(CommunicatorTest, AllGatherRanges) {
  check_all_gather_ranges(comm(), 1000);
}

TEST(CommunicatorTest, LargeAllGatherRangesInChunks) {
  std::unique_ptr<Communicator> chunking = make_chunking_communicator();
  check_all_gather_ranges(chunking ? *chunking : comm(), 1'500'000);
}

TEST(CommunicatorTest, Barrier) {
  for (int i = 0; i < 3; ++i) comm().barrier("test barrier");
}

TEST(CommunicatorTest, TwoCommunicatorsInterleave) {
  std::unique_ptr<Communicator> second = make_communicator(tests::kCommunicatorTimeoutS / 2);
  std::vector<float> first_values = inputs(5000, comm().rank());
  std::vector<float> second_values = inputs(300, comm().rank());
  std::unique_ptr<PendingCollective> pending =
      comm().all_reduce_sum_async(first_values.data(), 5000, "test first communicator");
  second->all_reduce_sum(second_values.data(), 300, "test second communicator");
  comm().wait(*pending);
  EXPECT_EQ(first_wrong_sum(first_values, comm().world_size()), -1);
  EXPECT_EQ(first_wrong_sum(second_values, comm().world_size()), -1);
}

TEST(CommunicatorTest, BadArgumentsThrowOnEveryRank) {
  float value = 1;
  EXPECT_THROW(comm().all_reduce_sum(&value, -1, "test"), std::invalid_argument);
  EXPECT_THROW(comm().all_reduce_sum(nullptr, 3, "test"), std::invalid_argument);
  EXPECT_THROW(comm().broadcast(&value, 4, -1, "test"), std::invalid_argument);
  EXPECT_THROW(comm().broadcast(&value, 4, comm().world_size(), "test"), std::invalid_argument);
  float received = 0;
  EXPECT_THROW(comm().send_receive(&value, &received, 4, comm().world_size(), "test"),
               std::invalid_argument);
  EXPECT_THROW(comm().send_receive(&value, nullptr, 4, 0, "test"), std::invalid_argument);
  EXPECT_THROW(comm().reduce_sum_async(&value, 1, comm().world_size(), "test"),
               std::invalid_argument);
  const std::vector<int64_t> too_few(comm().world_size(), 0);
  EXPECT_THROW(comm().all_gather_ranges(&value, too_few, "test"), std::invalid_argument);
  std::vector<int64_t> decreasing(comm().world_size() + 1, 1);
  decreasing.back() = 0;
  EXPECT_THROW(comm().all_gather_ranges(&value, decreasing, "test"), std::invalid_argument);
  EXPECT_THROW(make_communicator(0), std::invalid_argument);
}

// Run by CTest's comm_mpi_timeout_abort through tests/expect_mpi_abort.sh: 2 ranks with
// DGQA_TEST_TIMEOUT_CHILD=1, where rank 1 never joins an all-reduce, so rank 0 must abort the
// whole job after its 3 s timeout. Skipped in every other run.
TEST(CommunicatorTimeoutTest, TimeoutChildAbortsTheJob) {
  if (std::getenv("DGQA_TEST_TIMEOUT_CHILD") == nullptr) {
    GTEST_SKIP() << "runs only as the child of comm_mpi_timeout_abort";
  }
  ASSERT_GE(comm().world_size(), 2);
  // The last rank never comes: the others wait for it, and their timeout line names it.
  std::unique_ptr<Communicator> impatient = make_communicator(3.0);
  const int late_rank = impatient->world_size() - 1;
  if (impatient->rank() != late_rank) {
    float value = 1;
    impatient->all_reduce_sum(&value, 1, "test all-reduce that the last rank skips");
    ADD_FAILURE() << "the all-reduce returned without the last rank";
  } else {
    std::this_thread::sleep_for(std::chrono::seconds(60));
    ADD_FAILURE() << "the other ranks did not abort the job";
  }
  // Whatever happened, do not meet the other rank in a shutdown collective, whose own timeout
  // would print the text the wrapper looks for.
  std::fflush(nullptr);
  std::_Exit(1);
}

}  // namespace
}  // namespace dgqa
