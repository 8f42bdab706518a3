// What a collective timeout counts and says (Note [Naming a late rank]): WaitClock
// (comm/wait_clock.h) counts the time between polls in full, and a long gap between two polls (a
// stopped process) as at most kMaxPollGap; describe_late_ranks (comm/late_ranks.h) names the
// ranks that did not answer, those waiting elsewhere, and those waiting in the same collective.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "comm/late_ranks.h"
#include "comm/wait_clock.h"

#include "common/stopwatch.h"

namespace dgqa {
namespace {

TEST(WaitClockTest, CountsTheTimeOfABusyWait) {
  const Stopwatch wall;  // started first: the clock's time is within the wall's
  WaitClock clock;
  double waited = 0;
  while (wall.seconds() < 0.3) waited = clock.poll();
  EXPECT_GE(waited, 0.29);
  EXPECT_LE(waited, wall.seconds());
}

TEST(WaitClockTest, ALongGapBetweenPollsCountsAsTheMaximumGap) {
  WaitClock clock;
  clock.poll();
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const double waited = clock.poll();
  EXPECT_GE(waited, WaitClock::kMaxPollGap);
  EXPECT_LT(waited, WaitClock::kMaxPollGap + 0.2);
  // Polling on counts in full again.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_GE(clock.poll(), waited + 0.29);
}

std::optional<WaitingIn> waiting_in(const char* what, int64_t sequence) {
  WaitingIn answer;
  answer.sequence = sequence;
  answer.set_what(what);
  return answer;
}

TEST(LateRanksTest, NamesTheSilentRanksFirstAndTheOnesWaitingHereLast) {
  const std::vector<std::optional<WaitingIn>> answers = {
      std::nullopt,  // this rank: ignored
      waiting_in("gradient all-reduce", 7), std::nullopt, waiting_in("gradient all-reduce", 7),
      std::nullopt};
  EXPECT_EQ(describe_late_ranks(answers, 0, "gradient all-reduce", 7),
            "ranks 2, 4 did not arrive (no answer: hangs outside a collective, is stopped, or "
            "died); ranks 1, 3 wait here too");
}

TEST(LateRanksTest, NamesARankWaitingInAnotherCollective) {
  const std::vector<std::optional<WaitingIn>> answers = {
      waiting_in("key-norm all-reduce", 5), waiting_in("gradient all-reduce", 7), std::nullopt};
  EXPECT_EQ(describe_late_ranks(answers, 2, "gradient all-reduce", 7),
            "rank 0 waits in key-norm all-reduce (its collective 5, this one is 7); rank 1 waits "
            "here too");
  // The same name at another position in the order is another collective too.
  EXPECT_EQ(describe_late_ranks({waiting_in("barrier", 4), std::nullopt}, 1, "barrier", 3),
            "rank 0 waits in barrier (its collective 4, this one is 3)");
}

TEST(LateRanksTest, SaysSoWhenEveryRankWaitsInTheSameCollective) {
  EXPECT_EQ(describe_late_ranks({std::nullopt, waiting_in("eval all-gather", 2)}, 0,
                                "eval all-gather", 2),
            "every rank waits in it (MPI does not deliver between them); rank 1 waits here too");
}

TEST(LateRanksTest, LongNamesAreCutAndStillMatch) {
  const std::string long_name(200, 'x');
  const WaitingIn answer = *waiting_in(long_name.c_str(), 1);
  EXPECT_EQ(std::string(answer.what), long_name.substr(0, sizeof(answer.what) - 1));
  EXPECT_EQ(describe_late_ranks({std::nullopt, answer}, 0, long_name.c_str(), 1),
            "every rank waits in it (MPI does not deliver between them); rank 1 waits here too");
  // An answer whose name fills the buffer without a terminating NUL is read within the buffer.
  WaitingIn unterminated;
  for (char& c : unterminated.what) c = 'y';
  const std::string line = describe_late_ranks({std::nullopt, unterminated}, 0, "z", 1);
  EXPECT_NE(line.find("waits in " + std::string(sizeof(unterminated.what), 'y') + " ("),
            std::string::npos)
      << line;
}

}  // namespace
}  // namespace dgqa
