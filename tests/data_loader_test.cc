// The distributed sampler, the prefetcher and the batch loader.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "data/loader.h"
#include "data/prefetcher.h"
#include "data/sampler.h"
#include "data/stored_source.h"
#include "tests/test_util.h"

namespace dgqa {
namespace {

using tests::expect_contains;
using tests::input_error_of;

std::vector<int64_t> sorted(std::vector<int64_t> values) {
  std::sort(values.begin(), values.end());
  return values;
}

std::vector<int64_t> identity(int64_t n) {
  std::vector<int64_t> values(n);
  std::iota(values.begin(), values.end(), int64_t{0});
  return values;
}

SamplerOptions sampler_options(bool train, int batch_size, int rank, int world_size) {
  SamplerOptions options;
  options.train = train;
  options.seed = 7;
  options.global_batch_size = batch_size;
  options.rank = rank;
  options.world_size = world_size;
  return options;
}

TEST(EpochPermutationTest, IsAPermutationThatDependsOnSeedAndEpoch) {
  const std::vector<int64_t> order = epoch_permutation(1000, 1, 0);
  EXPECT_EQ(sorted(order), identity(1000));
  EXPECT_NE(order, identity(1000));
  EXPECT_EQ(epoch_permutation(1000, 1, 0), order);
  EXPECT_NE(epoch_permutation(1000, 1, 1), order);
  EXPECT_NE(epoch_permutation(1000, 2, 0), order);
  EXPECT_EQ(epoch_permutation(1, 1, 0), identity(1));
  EXPECT_TRUE(epoch_permutation(0, 1, 0).empty());
}

TEST(EpochPermutationTest, EveryPositionTakesEveryValue) {
  // Over many epochs each example lands in the first and last position with roughly equal
  // frequency: a crude check that the bounded draws are not skewed.
  const int n = 5, epochs = 5000;
  std::vector<int> first(n), last(n);
  for (int epoch = 0; epoch < epochs; ++epoch) {
    std::vector<int64_t> order = epoch_permutation(n, 3, epoch);
    ++first[order.front()];
    ++last[order.back()];
  }
  for (int i = 0; i < n; ++i) {
    EXPECT_NEAR(first[i], epochs / n, 100) << i;
    EXPECT_NEAR(last[i], epochs / n, 100) << i;
  }
}

TEST(DistributedSamplerTest, TrainingDropsTheIncompleteLastBatch) {
  DistributedSampler sampler(103, sampler_options(true, 10, 0, 1));
  EXPECT_EQ(sampler.batches_per_epoch(), 10);
  sampler.set_epoch(3);
  std::vector<int64_t> seen;
  for (int64_t b = 0; b < sampler.batches_per_epoch(); ++b) {
    std::vector<int64_t> batch = sampler.global_batch(b);
    EXPECT_EQ(batch.size(), 10u);
    seen.insert(seen.end(), batch.begin(), batch.end());
  }
  std::vector<int64_t> order = epoch_permutation(103, 7, 3);
  EXPECT_EQ(seen, std::vector<int64_t>(order.begin(), order.begin() + 100));
  EXPECT_THROW(sampler.global_batch(10), std::out_of_range);
}

TEST(DistributedSamplerTest, RanksTakeEveryWorldSizeThPosition) {
  const int world = 4;
  std::vector<DistributedSampler> ranks;
  for (int r = 0; r < world; ++r) ranks.emplace_back(50, sampler_options(true, 8, r, world));
  for (DistributedSampler& sampler : ranks) sampler.set_epoch(1);
  for (int64_t b = 0; b < ranks[0].batches_per_epoch(); ++b) {
    const std::vector<int64_t> global = ranks[0].global_batch(b);
    std::vector<int64_t> all_ranks;
    for (int r = 0; r < world; ++r) {
      EXPECT_EQ(ranks[r].global_batch(b), global);  // every rank agrees on the global batch
      std::vector<int64_t> share = ranks[r].rank_batch(b);
      EXPECT_EQ(share, (std::vector<int64_t>{global[r], global[r + world]}));
      all_ranks.insert(all_ranks.end(), share.begin(), share.end());
    }
    EXPECT_EQ(sorted(all_ranks), sorted(global));
  }
}

TEST(DistributedSamplerTest, EvaluationKeepsOrderAndThePartialLastBatch) {
  // 10 examples in batches of 4 over 3 ranks: the last batch {8, 9} leaves rank 2 empty.
  std::vector<std::vector<int64_t>> expected_last = {{8}, {9}, {}};
  for (int r = 0; r < 3; ++r) {
    DistributedSampler sampler(10, sampler_options(false, 4, r, 3));
    ASSERT_EQ(sampler.batches_per_epoch(), 3);
    sampler.set_epoch(5);
    EXPECT_EQ(sampler.global_batch(0), (std::vector<int64_t>{0, 1, 2, 3}));
    EXPECT_EQ(sampler.global_batch(2), (std::vector<int64_t>{8, 9}));
    EXPECT_EQ(sampler.rank_batch(2), expected_last[r]);
  }
  EXPECT_EQ(rank_share({0, 1, 2, 3}, 0, 3), (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(rank_share({0, 1, 2, 3}, 1, 3), (std::vector<int64_t>{1}));
}

TEST(DistributedSamplerTest, RejectsBadBatchSizes) {
  expect_contains(input_error_of([] { DistributedSampler(100, sampler_options(true, 10, 0, 4)); }),
                  "train.global_batch_size: 10 is not divisible by the world size 4");
  expect_contains(input_error_of([] { DistributedSampler(100, sampler_options(true, 128, 0, 1)); }),
                  "train.global_batch_size: 128 exceeds the 100 training examples");
  SamplerOptions eval = sampler_options(false, 0, 0, 1);
  eval.batch_size_field = "train.eval_batch_size";
  expect_contains(input_error_of([&] { DistributedSampler(100, eval); }),
                  "train.eval_batch_size: 0 must be positive");
  EXPECT_THROW(DistributedSampler(100, sampler_options(true, 10, 2, 2)), std::invalid_argument);
}

// Batches of three slots whose labels are index * 10 + slot; slot 1 of batch `fail_at` throws.
// Slot 0 is slow, so that with several workers the slots finish out of order.
Prefetcher numbered_batches(int64_t fail_at, int depth, int workers) {
  return Prefetcher(
      [](int64_t index) {
        Batch batch;
        batch.index_in_epoch = index;
        batch.size = 3;
        batch.labels.assign(3, -1);
        return batch;
      },
      [fail_at](Batch* batch, int slot) {
        if (batch->index_in_epoch == fail_at && slot == 1) {
          throw std::runtime_error("batch " + std::to_string(fail_at) + " failed");
        }
        if (slot == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
        batch->labels[slot] = static_cast<int32_t>(batch->index_in_epoch * 10 + slot);
      },
      depth, workers);
}

TEST(PrefetcherTest, DeliversBatchesInOrderAndRethrowsWorkerErrors) {
  for (const auto& [depth, workers] : {std::pair{0, 0}, {1, 1}, {3, 1}, {3, 4}, {2, 0}}) {
    SCOPED_TRACE("depth " + std::to_string(depth) + ", workers " + std::to_string(workers));
    Prefetcher prefetcher = numbered_batches(/*fail_at=*/5, depth, workers);
    prefetcher.start(2, 8);
    for (int32_t index = 2; index < 5; ++index) {
      const Batch batch = prefetcher.take();
      EXPECT_EQ(batch.index_in_epoch, index);
      EXPECT_EQ(batch.labels, (std::vector<int32_t>{index * 10, index * 10 + 1, index * 10 + 2}));
    }
    EXPECT_FALSE(prefetcher.finished());
    try {
      prefetcher.take();
      ADD_FAILURE() << "no error";
    } catch (const std::runtime_error& error) {
      EXPECT_EQ(std::string(error.what()), "batch 5 failed");
    }
    // A new run starts clean.
    prefetcher.start(0, 2);
    EXPECT_EQ(prefetcher.take().index_in_epoch, 0);
    EXPECT_EQ(prefetcher.take().index_in_epoch, 1);
    EXPECT_TRUE(prefetcher.finished());
    EXPECT_THROW(prefetcher.take(), std::logic_error);
  }
}

TEST(PrefetcherTest, StopsCleanlyWithBatchesLeft) {
  for (int workers : {1, 3}) {
    Prefetcher prefetcher = numbered_batches(-1, 2, workers);
    prefetcher.start(0, 1000);
    EXPECT_EQ(prefetcher.take().index_in_epoch, 0);
    prefetcher.start(10, 20);  // abandons the first run mid-way
    EXPECT_EQ(prefetcher.take().index_in_epoch, 10);
  }  // the destructor joins workers that wait for room in the queue
}

// What the loader tests vary: the stored source's transforms and the loader's threads.
struct TestLoaderOptions {
  SamplerOptions sampler;
  TransformOptions transform;
  AugmentOptions augment;
  int prefetch_batches = 2;
  int workers = 1;
};

StoredSourceOptions source_options(const TestLoaderOptions& options) {
  StoredSourceOptions source;
  source.train = options.sampler.train;
  source.seed = options.sampler.seed;
  source.transform = options.transform;
  source.augment = options.augment;
  return source;
}

LoaderOptions loader_options(const TestLoaderOptions& options) {
  LoaderOptions loader;
  loader.sampler = options.sampler;
  loader.prefetch_batches = options.prefetch_batches;
  loader.workers = options.workers;
  return loader;
}

// A stored dataset's source and a loader over it.
struct TestLoader {
  TestLoader(const Dataset& dataset, const TestLoaderOptions& options)
      : source(dataset, source_options(options)), loader(source, loader_options(options)) {}
  StoredImageSource source;
  BatchLoader loader;
};

// 60 images of 1x4x4 whose pixels all equal their example index, labelled index % 7.
Dataset counting_dataset() {
  Dataset dataset;
  dataset.num_examples = 60;
  dataset.channels = 1;
  dataset.height = 4;
  dataset.width = 4;
  for (int i = 0; i < dataset.num_examples; ++i) {
    dataset.pixels.insert(dataset.pixels.end(), 16, static_cast<uint8_t>(i));
    dataset.labels.push_back(i % 7);
  }
  dataset.num_classes_seen = 7;
  dataset.label_source = "test";
  return dataset;
}

std::vector<Batch> read_epoch(BatchLoader& loader, int64_t epoch, int64_t first_batch = 0) {
  loader.start_epoch(epoch, first_batch);
  std::vector<Batch> batches;
  Batch batch;
  while (loader.next(&batch)) batches.push_back(batch);
  return batches;
}

void expect_same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].images, b[i].images) << "batch " << i;
    EXPECT_EQ(a[i].labels, b[i].labels) << "batch " << i;
    EXPECT_EQ(a[i].size, b[i].size);
    EXPECT_EQ(a[i].epoch, b[i].epoch);
    EXPECT_EQ(a[i].index_in_epoch, b[i].index_in_epoch);
  }
}

TEST(BatchLoaderTest, BatchesHoldTheSampledExamples) {
  const Dataset dataset = counting_dataset();
  TestLoaderOptions options;
  options.sampler = sampler_options(true, 8, 1, 2);
  options.transform.image_size = 4;
  options.transform.stddev = {1.f / 255.f};  // images come out as their example index
  TestLoader test_loader(dataset, options);
  BatchLoader& loader = test_loader.loader;
  ASSERT_EQ(loader.batches_per_epoch(), 7);

  DistributedSampler sampler(60, options.sampler);
  sampler.set_epoch(2);
  std::vector<Batch> batches = read_epoch(loader, 2);
  ASSERT_EQ(batches.size(), 7u);
  for (int64_t b = 0; b < 7; ++b) {
    const Batch& batch = batches[b];
    const std::vector<int64_t> examples = sampler.rank_batch(b);
    ASSERT_EQ(batch.size, 4);
    EXPECT_EQ(batch.epoch, 2);
    EXPECT_EQ(batch.index_in_epoch, b);
    ASSERT_EQ(batch.images.size(), 4u * 16);
    for (int i = 0; i < batch.size; ++i) {
      EXPECT_NEAR(batch.images[i * 16 + 5], static_cast<float>(examples[i]), 1e-3f);
      EXPECT_EQ(batch.labels[i], examples[i] % 7);
    }
  }
}

TEST(BatchLoaderTest, TrainingAugmentsEachExampleByItsOwnDraw) {
  Dataset dataset = counting_dataset();
  for (size_t p = 0; p < dataset.pixels.size(); ++p) {
    dataset.pixels[p] = static_cast<uint8_t>(p * 37 % 251);
  }
  TestLoaderOptions options;
  options.sampler = sampler_options(true, 6, 1, 2);
  options.transform = {/*image_size=*/6, /*mean=*/{0.5f}, /*stddev=*/{}};
  options.augment = {/*crop_padding=*/1, /*hflip=*/true};
  const ImageTransform transform(options.transform, 1, 4, 4);
  const RandomAugmentation random(options.augment, options.sampler.seed);

  for (bool train : {true, false}) {
    options.sampler.train = train;
    DistributedSampler sampler(60, options.sampler);
    sampler.set_epoch(3);
    TestLoader test_loader(dataset, options);
    BatchLoader& loader = test_loader.loader;
    std::vector<Batch> batches = read_epoch(loader, 3);
    int augmented = 0;
    for (const Batch& batch : batches) {
      const std::vector<int64_t> examples = sampler.rank_batch(batch.index_in_epoch);
      for (int i = 0; i < batch.size; ++i) {
        const Augmentation augmentation = train ? random.draw(3, examples[i]) : Augmentation{};
        std::vector<float> expected(36), plain(36);
        transform.apply(dataset.image(examples[i]), augmentation, expected.data());
        transform.apply(dataset.image(examples[i]), Augmentation{}, plain.data());
        EXPECT_EQ(
            std::vector<float>(batch.images.begin() + i * 36, batch.images.begin() + (i + 1) * 36),
            expected);
        augmented += expected != plain;
      }
    }
    if (train) {
      EXPECT_GT(augmented, 20);  // most of the 30 images moved or flipped
    } else {
      EXPECT_EQ(augmented, 0);
    }
  }
}

TEST(BatchLoaderTest, PrefetchingDoesNotChangeTheBatches) {
  const Dataset dataset = counting_dataset();
  TestLoaderOptions options;
  options.sampler = sampler_options(true, 12, 0, 3);
  options.transform = {/*image_size=*/6, /*mean=*/{0.3f}, /*stddev=*/{0.2f}};
  options.augment = {/*crop_padding=*/1, /*hflip=*/true};
  std::vector<std::vector<Batch>> runs;
  for (const auto& [prefetch, workers] :
       {std::pair{0, 1}, {1, 1}, {2, 1}, {4, 1}, {3, 3}, {2, 0}}) {
    options.prefetch_batches = prefetch;
    options.workers = workers;
    TestLoader test_loader(dataset, options);
    BatchLoader& loader = test_loader.loader;
    std::vector<Batch> batches = read_epoch(loader, 0);
    std::vector<Batch> next_epoch = read_epoch(loader, 1);
    batches.insert(batches.end(), next_epoch.begin(), next_epoch.end());
    runs.push_back(batches);
  }
  ASSERT_EQ(runs[0].size(), 10u);
  ASSERT_EQ(runs.size(), 6u);
  for (size_t run = 1; run < runs.size(); ++run) expect_same_batches(runs[run], runs[0]);
}

TEST(BatchLoaderTest, ResumingMidEpochGivesTheRestOfTheEpoch) {
  const Dataset dataset = counting_dataset();
  TestLoaderOptions options;
  options.sampler = sampler_options(true, 10, 0, 1);
  options.transform.image_size = 5;
  options.augment = {2, true};
  TestLoader test_loader(dataset, options);
  BatchLoader& loader = test_loader.loader;
  std::vector<Batch> full = read_epoch(loader, 4);
  std::vector<Batch> resumed = read_epoch(loader, 4, /*first_batch=*/4);
  expect_same_batches(resumed, std::vector<Batch>(full.begin() + 4, full.end()));
  EXPECT_TRUE(read_epoch(loader, 4, loader.batches_per_epoch()).empty());
  EXPECT_THROW(loader.start_epoch(4, loader.batches_per_epoch() + 1), std::out_of_range);
}

TEST(BatchLoaderTest, AbandoningAnEpochMidwayIsClean) {
  const Dataset dataset = counting_dataset();
  TestLoaderOptions options;
  options.sampler = sampler_options(true, 4, 0, 1);
  options.transform.image_size = 8;
  TestLoader test_loader(dataset, options);
  BatchLoader& loader = test_loader.loader;
  std::vector<Batch> epoch1 = read_epoch(loader, 1);
  loader.start_epoch(0);
  Batch batch;
  ASSERT_TRUE(loader.next(&batch));
  EXPECT_EQ(batch.epoch, 0);
  expect_same_batches(read_epoch(loader, 1), epoch1);
  loader.start_epoch(2);
}  // destroyed with a thread still preparing epoch 2

TEST(BatchLoaderTest, ShardedBatchesMakeUpTheGlobalBatch) {
  // Evaluation over 3 ranks of batches of 8: no shuffle, no augmentation, partial last batch.
  const Dataset dataset = counting_dataset();
  TestLoaderOptions options;
  options.sampler = sampler_options(false, 8, 0, 3);
  options.transform.image_size = 4;
  options.transform.stddev = {1.f / 255.f};
  options.augment = {3, true};  // ignored in evaluation
  std::vector<std::vector<Batch>> per_rank;
  for (int rank = 0; rank < 3; ++rank) {
    options.sampler.rank = rank;
    TestLoader test_loader(dataset, options);
    BatchLoader& loader = test_loader.loader;
    per_rank.push_back(read_epoch(loader, 0));
    ASSERT_EQ(per_rank.back().size(), 8u);  // ceil(60 / 8)
  }
  for (int64_t b = 0; b < 8; ++b) {
    const int64_t global_size = std::min<int64_t>(8, 60 - 8 * b);
    for (int64_t position = 0; position < global_size; ++position) {
      const Batch& batch = per_rank[position % 3][b];
      const int64_t i = position / 3;
      ASSERT_LT(i, batch.size);
      EXPECT_NEAR(batch.images[i * 16], static_cast<float>(8 * b + position), 1e-3f);
      EXPECT_EQ(batch.labels[i], (8 * b + position) % 7);
    }
    int total = 0;
    for (int rank = 0; rank < 3; ++rank) total += per_rank[rank][b].size;
    EXPECT_EQ(total, global_size);
  }
  EXPECT_EQ(per_rank[0][7].size, 2);  // the last batch holds examples 56..59
  EXPECT_EQ(per_rank[2][7].size, 1);
}

TEST(BatchLoaderTest, RejectsBadOptions) {
  const Dataset dataset = counting_dataset();
  TestLoaderOptions options;
  options.sampler = sampler_options(true, 8, 0, 1);
  options.transform.image_size = 4;
  options.prefetch_batches = -1;
  expect_contains(input_error_of([&] { TestLoader(dataset, options); }),
                  "data.prefetch_batches: -1");
  options.prefetch_batches = 2;
  options.workers = -1;
  expect_contains(input_error_of([&] { TestLoader(dataset, options); }), "data.workers: -1");
  options.workers = 1;
  options.transform.mean = {0.f, 0.f};
  expect_contains(input_error_of([&] { TestLoader(dataset, options); }), "data.mean");
  options.transform.mean = {};
  TestLoader test_loader(dataset, options);
  BatchLoader& loader = test_loader.loader;
  Batch batch;
  EXPECT_THROW(loader.next(&batch), std::logic_error);
}

}  // namespace
}  // namespace dgqa
