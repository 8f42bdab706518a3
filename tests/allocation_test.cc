// The query-head allocation rules (docs/design.md §3.2, §3.3) against the reference test vectors.
#include "model/allocation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace dgqa {
namespace {

int sum_of(const std::vector<int>& a) {
  return std::accumulate(a.begin(), a.end(), 0);
}

// Sum H and no negative entries: what every allocation must satisfy.
void expect_valid_allocation(const std::vector<int>& a, size_t G, int H) {
  ASSERT_EQ(a.size(), G);
  EXPECT_EQ(sum_of(a), H);
  for (int heads : a) EXPECT_GE(heads, 0);
}

nlohmann::json load_vectors() {
  const std::string path = std::string(DGQA_TESTDATA_DIR) + "/allocation_vectors.json";
  return nlohmann::json::parse(tests::read_file(path));
}

TEST(AllocationVectors, EveryCaseMatches) {
  const nlohmann::json cases = load_vectors().at("cases");
  ASSERT_FALSE(cases.empty());
  for (size_t index = 0; index < cases.size(); ++index) {
    const nlohmann::json& c = cases[index];
    SCOPED_TRACE("case " + std::to_string(index) + ": " + c.dump());
    const std::string scheme = c.at("scheme");
    const int H = c.at("heads");
    const auto norms = c.at("norms").get<std::vector<float>>();
    const auto expected = c.at("allocation").get<std::vector<int>>();
    ASSERT_EQ(norms.size(), c.at("kv_heads").get<size_t>());

    if (scheme == "KDGQA") {
      EXPECT_EQ(kdgqa_allocation(norms, H), expected);
      continue;
    }
    ASSERT_TRUE(scheme == "DGQA_DIFF" || scheme == "DGQA_EMA") << "unknown scheme " << scheme;
    const DgqaKind kind = scheme == "DGQA_DIFF" ? DgqaKind::kDiff : DgqaKind::kEma;
    const DgqaUpdate update = dgqa_update(kind, norms, c.at("cache").get<std::vector<float>>(),
                                          c.at("beta").get<float>(), c.at("window").get<int>(), H);
    EXPECT_EQ(update.allocation, expected);
    const auto expected_cache = c.at("new_cache").get<std::vector<float>>();
    ASSERT_EQ(update.new_cache.size(), expected_cache.size());
    for (size_t g = 0; g < expected_cache.size(); ++g) {
      EXPECT_NEAR(update.new_cache[g], expected_cache[g], 1e-6 * std::fabs(expected_cache[g]))
          << "new_cache[" << g << "]";
    }
  }
}

TEST(AllocationVectors, EveryResultIsValid) {
  const nlohmann::json cases = load_vectors().at("cases");
  for (size_t index = 0; index < cases.size(); ++index) {
    SCOPED_TRACE("case " + std::to_string(index));
    const nlohmann::json& c = cases[index];
    const int H = c.at("heads");
    const auto norms = c.at("norms").get<std::vector<float>>();
    expect_valid_allocation(kdgqa_allocation(norms, H), norms.size(), H);
    expect_valid_allocation(apportion(norms, H), norms.size(), H);
  }
}

TEST(EqualAllocation, DividesEvenly) {
  EXPECT_EQ(equal_allocation(12, 4), (std::vector<int>{3, 3, 3, 3}));
  EXPECT_EQ(equal_allocation(6, 6), (std::vector<int>{1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(equal_allocation(5, 1), (std::vector<int>{5}));
}

TEST(EqualAllocation, RemainderGoesToLowestIndices) {
  EXPECT_EQ(equal_allocation(7, 3), (std::vector<int>{3, 2, 2}));
  EXPECT_EQ(equal_allocation(8, 3), (std::vector<int>{3, 3, 2}));
  EXPECT_EQ(equal_allocation(2, 4), (std::vector<int>{1, 1, 0, 0}));
}

TEST(EqualAllocation, RejectsNoKvHeads) {
  EXPECT_THROW(equal_allocation(4, 0), std::invalid_argument);
  EXPECT_THROW(kdgqa_allocation({}, 4), std::invalid_argument);
  EXPECT_THROW(apportion({}, 4), std::invalid_argument);
}

TEST(KvHeadMap, QueryHeadsTakenInOrder) {
  EXPECT_EQ(kv_head_map({2, 0, 3, 1}), (std::vector<int>{0, 0, 2, 2, 2, 3}));
  EXPECT_EQ(kv_head_map({1, 1, 1}), (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(kv_head_map({0, 4}), (std::vector<int>{1, 1, 1, 1}));
  EXPECT_TRUE(kv_head_map({0, 0}).empty());
}

TEST(KvHeadMap, LengthIsTheNumberOfQueryHeads) {
  const std::vector<int> a = kdgqa_allocation({0.3f, 2.0f, 1.1f, 0.7f}, 12);
  EXPECT_EQ(kv_head_map(a).size(), 12u);
}

TEST(Kdgqa, TwoKvHeadsGiveEverythingToTheLarger) {
  // With G = 2 the min-max step gives (0, 1) or (1, 0): the paper's behaviour.
  EXPECT_EQ(kdgqa_allocation({1.0f, 3.0f}, 6), (std::vector<int>{0, 6}));
  EXPECT_EQ(kdgqa_allocation({3.0f, 1.0f}, 6), (std::vector<int>{6, 0}));
}

TEST(Apportion, ZeroScoresGiveTheEqualSplit) {
  EXPECT_EQ(apportion({0.f, 0.f, 0.f}, 7), equal_allocation(7, 3));
}

TEST(Apportion, ProportionalWhenExact) {
  EXPECT_EQ(apportion({1.f, 2.f, 3.f}, 12), (std::vector<int>{2, 4, 6}));
}

TEST(Apportion, SurplusTakenFromTheLargestExcess) {
  // Quotas 1.5, 1.5, 1.5, 1.5 round (half even) to 2 each: sum 8 > 6. Surpluses tie at 0.5,
  // so the first indices give a head back.
  EXPECT_EQ(apportion({1.f, 1.f, 1.f, 1.f}, 6), (std::vector<int>{1, 1, 2, 2}));
}

TEST(Apportion, DeficitGivenToTheLargestShortfall) {
  // Quotas 0.4 each (H = 2, G = 5) round to 0: the first two indices get one head each.
  EXPECT_EQ(apportion({1.f, 1.f, 1.f, 1.f, 1.f}, 2), (std::vector<int>{1, 1, 0, 0, 0}));
  // Quotas 0.2, 0.3, 2.5 round (half even) to 0, 0, 2: the missing head goes to index 2,
  // whose shortfall 0.5 is the largest.
  EXPECT_EQ(apportion({0.2f, 0.3f, 2.5f}, 3), (std::vector<int>{0, 0, 3}));
}

// A diverged run's key norms (NaN, infinite) have no proportion: the equal split, not the
// undefined conversion of a NaN quota to int.
TEST(NonFinite, NormsAndScoresGiveTheEqualSplit) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(kdgqa_allocation({1.f, nan, 2.f}, 6), equal_allocation(6, 3));
  EXPECT_EQ(kdgqa_allocation({nan, nan}, 5), equal_allocation(5, 2));
  EXPECT_EQ(kdgqa_allocation({1.f, inf}, 4), equal_allocation(4, 2));
  EXPECT_EQ(apportion({1.f, nan, 2.f}, 6), equal_allocation(6, 3));
  EXPECT_EQ(apportion({inf, 1.f}, 3), equal_allocation(3, 2));
  for (DgqaKind kind : {DgqaKind::kDiff, DgqaKind::kEma}) {
    const DgqaUpdate update = dgqa_update(kind, {nan, 1.f, 2.f}, {0.5f, 0.5f, 0.5f}, 0.9f, 1, 6);
    EXPECT_EQ(update.allocation, equal_allocation(6, 3));
  }
}

TEST(Apportion, RejectsNegativeScores) {
  EXPECT_THROW(apportion({1.f, -1.f}, 4), std::invalid_argument);
}

TEST(Invariants, RandomNormsGiveValidAllocations) {
  for (uint32_t seed = 0; seed < 200; ++seed) {
    const size_t G = 1 + seed % 8;
    const int H = static_cast<int>(G) * (1 + seed % 3) + static_cast<int>(seed % 5);
    const std::vector<float> norms = tests::random_vector(G, seed, 0.0f, 10.0f);
    const std::vector<float> cache = tests::random_vector(G, seed + 1000, 0.0f, 1.0f);
    SCOPED_TRACE("seed " + std::to_string(seed));
    expect_valid_allocation(kdgqa_allocation(norms, H), G, H);
    expect_valid_allocation(apportion(norms, H), G, H);
    for (DgqaKind kind : {DgqaKind::kDiff, DgqaKind::kEma}) {
      const DgqaUpdate update = dgqa_update(kind, norms, cache, 0.9f, 300, H);
      expect_valid_allocation(update.allocation, G, H);
      EXPECT_EQ(kv_head_map(update.allocation).size(), static_cast<size_t>(H));
    }
  }
}

TEST(DgqaUpdate, CacheIsTheAverageOverTheWindow) {
  const DgqaUpdate update = dgqa_update(DgqaKind::kEma, {2.f, 4.f}, {1.f, 0.f}, 0.5f, 2, 4);
  EXPECT_EQ(update.new_cache, (std::vector<float>{1.5f, 2.f}));
}

TEST(DgqaUpdate, RejectsMismatchedCache) {
  EXPECT_THROW(dgqa_update(DgqaKind::kDiff, {1.f, 2.f}, {0.f}, 0.9f, 10, 4), std::invalid_argument);
}

}  // namespace
}  // namespace dgqa
