// detect_rank_info (comm/launch_env.h): rank, world size and local rank from the environment of
// OpenMPI, SLURM and PMI launchers, their precedence, and the errors for malformed values.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "comm/launch_env.h"
#include "common/error.h"

namespace dgqa {
namespace {

const char* const kLaunchVariables[] = {"OMPI_COMM_WORLD_RANK",
                                        "OMPI_COMM_WORLD_SIZE",
                                        "OMPI_COMM_WORLD_LOCAL_RANK",
                                        "OMPI_COMM_WORLD_LOCAL_SIZE",
                                        "SLURM_PROCID",
                                        "SLURM_NTASKS",
                                        "SLURM_LOCALID",
                                        "SLURM_JOB_ID",
                                        "SLURM_NODEID",
                                        "SLURM_STEP_TASKS_PER_NODE",
                                        "PMI_RANK",
                                        "PMI_SIZE",
                                        "PMIX_RANK",
                                        "MPI_LOCALRANKID",
                                        "PMI_LOCAL_RANK",
                                        "MPI_LOCALNRANKS"};

// Every test starts from an environment without launch variables (this program may itself run
// under a launcher) and leaves it as it found it.
class LaunchEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kLaunchVariables) {
      if (const char* value = std::getenv(name)) saved_[name] = value;
      unsetenv(name);
    }
  }
  void TearDown() override {
    for (const char* name : kLaunchVariables) unsetenv(name);
    for (const auto& [name, value] : saved_) setenv(name.c_str(), value.c_str(), 1);
  }

  static void set_env(const char* name, const char* value) { setenv(name, value, 1); }

  // The message of the InputError detect_rank_info throws, or nothing if it does not throw.
  static std::optional<std::string> detect_error() {
    try {
      detect_rank_info();
    } catch (const InputError& error) {
      return std::string(error.what());
    }
    return std::nullopt;
  }

 private:
  std::map<std::string, std::string> saved_;
};

void expect_rank_info(const RankInfo& info, int rank, int world_size, int local_rank,
                      const std::string& launcher) {
  EXPECT_EQ(info.rank, rank);
  EXPECT_EQ(info.world_size, world_size);
  EXPECT_EQ(info.local_rank, local_rank);
  EXPECT_EQ(info.launcher, launcher);
}

TEST_F(LaunchEnvTest, PlainProcessIsRankZeroOfOne) {
  expect_rank_info(detect_rank_info(), 0, 1, 0, "");
}

TEST_F(LaunchEnvTest, OpenMpi) {
  set_env("OMPI_COMM_WORLD_RANK", "3");
  set_env("OMPI_COMM_WORLD_SIZE", "4");
  set_env("OMPI_COMM_WORLD_LOCAL_RANK", "1");
  expect_rank_info(detect_rank_info(), 3, 4, 1, "openmpi");
}

TEST_F(LaunchEnvTest, MissingLocalRankMeansZero) {
  set_env("OMPI_COMM_WORLD_RANK", "1");
  set_env("OMPI_COMM_WORLD_SIZE", "2");
  expect_rank_info(detect_rank_info(), 1, 2, 0, "openmpi");
}

TEST_F(LaunchEnvTest, Srun) {
  set_env("SLURM_JOB_ID", "777");
  set_env("SLURM_PROCID", "5");
  set_env("SLURM_NTASKS", "8");
  set_env("SLURM_LOCALID", "1");
  expect_rank_info(detect_rank_info(), 5, 8, 1, "slurm");
}

TEST_F(LaunchEnvTest, BatchScriptWithoutSrunIsOneProcess) {
  set_env("SLURM_JOB_ID", "777");
  expect_rank_info(detect_rank_info(), 0, 1, 0, "");
  set_env("SLURM_NTASKS", "8");
  expect_rank_info(detect_rank_info(), 0, 1, 0, "");
}

TEST_F(LaunchEnvTest, Pmi) {
  set_env("PMI_RANK", "2");
  set_env("PMI_SIZE", "3");
  set_env("MPI_LOCALRANKID", "2");
  expect_rank_info(detect_rank_info(), 2, 3, 2, "pmi");
  unsetenv("MPI_LOCALRANKID");
  set_env("PMI_LOCAL_RANK", "1");
  expect_rank_info(detect_rank_info(), 2, 3, 1, "pmi");
}

TEST_F(LaunchEnvTest, PmixRank) {
  set_env("PMIX_RANK", "1");
  set_env("PMI_SIZE", "2");
  expect_rank_info(detect_rank_info(), 1, 2, 0, "pmi");
}

TEST_F(LaunchEnvTest, OpenMpiWinsOverSlurmWhichWinsOverPmi) {
  set_env("PMI_RANK", "0");
  set_env("PMI_SIZE", "6");
  set_env("PMIX_RANK", "0");
  expect_rank_info(detect_rank_info(), 0, 6, 0, "pmi");
  set_env("SLURM_PROCID", "1");
  set_env("SLURM_NTASKS", "5");
  expect_rank_info(detect_rank_info(), 1, 5, 0, "slurm");
  set_env("OMPI_COMM_WORLD_RANK", "2");
  set_env("OMPI_COMM_WORLD_SIZE", "4");
  expect_rank_info(detect_rank_info(), 2, 4, 0, "openmpi");
}

TEST_F(LaunchEnvTest, PmiRankWinsOverPmixRank) {
  set_env("PMIX_RANK", "0");
  set_env("PMI_RANK", "1");
  set_env("PMI_SIZE", "2");
  expect_rank_info(detect_rank_info(), 1, 2, 0, "pmi");
}

TEST_F(LaunchEnvTest, MalformedNumbersNameTheVariable) {
  set_env("OMPI_COMM_WORLD_SIZE", "4");
  for (const char* bad : {"", "abc", "1x", " 1", "+1", "-1", "1.0", "99999999999"}) {
    set_env("OMPI_COMM_WORLD_RANK", bad);
    const std::optional<std::string> error = detect_error();
    ASSERT_TRUE(error.has_value()) << "value '" << bad << "' accepted";
    EXPECT_NE(error->find("OMPI_COMM_WORLD_RANK"), std::string::npos) << *error;
  }
}

TEST_F(LaunchEnvTest, MalformedSlurmAndPmiValuesNameTheVariable) {
  set_env("SLURM_PROCID", "0");
  set_env("SLURM_NTASKS", "two");
  ASSERT_TRUE(detect_error().has_value());
  EXPECT_NE(detect_error()->find("SLURM_NTASKS"), std::string::npos);
  unsetenv("SLURM_PROCID");
  unsetenv("SLURM_NTASKS");
  set_env("PMI_RANK", "0");
  set_env("PMI_SIZE", "2");
  set_env("MPI_LOCALRANKID", "x");
  ASSERT_TRUE(detect_error().has_value());
  EXPECT_NE(detect_error()->find("MPI_LOCALRANKID"), std::string::npos);
}

TEST_F(LaunchEnvTest, RankMustBeBelowWorldSize) {
  set_env("SLURM_PROCID", "4");
  set_env("SLURM_NTASKS", "4");
  ASSERT_TRUE(detect_error().has_value());
  EXPECT_NE(detect_error()->find("SLURM_PROCID=4 is not below SLURM_NTASKS=4"), std::string::npos)
      << *detect_error();
  set_env("SLURM_PROCID", "3");
  set_env("SLURM_LOCALID", "4");
  ASSERT_TRUE(detect_error().has_value());
  EXPECT_NE(detect_error()->find("SLURM_LOCALID"), std::string::npos) << *detect_error();
}

TEST_F(LaunchEnvTest, LocalSizeIsOneUnlessTheLauncherSaysMore) {
  set_env("OMPI_COMM_WORLD_RANK", "3");
  set_env("OMPI_COMM_WORLD_SIZE", "4");
  EXPECT_EQ(detect_rank_info().local_size, 1);
  set_env("OMPI_COMM_WORLD_LOCAL_SIZE", "2");
  EXPECT_EQ(detect_rank_info().local_size, 2);
  unsetenv("OMPI_COMM_WORLD_RANK");
  unsetenv("OMPI_COMM_WORLD_SIZE");
  set_env("PMI_RANK", "2");
  set_env("PMI_SIZE", "3");
  set_env("MPI_LOCALNRANKS", "3");
  EXPECT_EQ(detect_rank_info().local_size, 3);
}

// srun gives the tasks per node as a layout; this node's entry is the local size.
TEST_F(LaunchEnvTest, SlurmLocalSizeIsThisNodesEntryOfTheLayout) {
  set_env("SLURM_PROCID", "0");
  set_env("SLURM_NTASKS", "9");
  EXPECT_EQ(detect_rank_info().local_size, 1);
  set_env("SLURM_STEP_TASKS_PER_NODE", "2(x3),3");
  EXPECT_EQ(detect_rank_info().local_size, 1) << "no SLURM_NODEID: unknown";
  for (const auto& [node, tasks] : {std::pair{"0", 2}, {"2", 2}, {"3", 3}, {"4", 1}}) {
    set_env("SLURM_NODEID", node);
    EXPECT_EQ(detect_rank_info().local_size, tasks) << "node " << node;
  }
  set_env("SLURM_STEP_TASKS_PER_NODE", "4");
  set_env("SLURM_NODEID", "0");
  EXPECT_EQ(detect_rank_info().local_size, 4);
  for (const char* bad : {"", "x", "2(x", "2(x)", "(x3)", "2(x3", "0", "2,,1", "2(y3)"}) {
    set_env("SLURM_STEP_TASKS_PER_NODE", bad);
    const std::optional<std::string> error = detect_error();
    ASSERT_TRUE(error.has_value()) << "layout '" << bad << "' accepted";
    EXPECT_NE(error->find("SLURM_STEP_TASKS_PER_NODE"), std::string::npos) << *error;
  }
}

TEST_F(LaunchEnvTest, LocalSizeMustHoldTheLocalRankAndFitTheWorld) {
  set_env("OMPI_COMM_WORLD_RANK", "3");
  set_env("OMPI_COMM_WORLD_SIZE", "4");
  set_env("OMPI_COMM_WORLD_LOCAL_RANK", "2");
  set_env("OMPI_COMM_WORLD_LOCAL_SIZE", "2");
  ASSERT_TRUE(detect_error().has_value());
  EXPECT_NE(detect_error()->find(
                "OMPI_COMM_WORLD_LOCAL_RANK=2 is not below OMPI_COMM_WORLD_LOCAL_SIZE=2"),
            std::string::npos)
      << *detect_error();
  set_env("OMPI_COMM_WORLD_LOCAL_SIZE", "5");
  ASSERT_TRUE(detect_error().has_value());
  EXPECT_NE(detect_error()->find("OMPI_COMM_WORLD_LOCAL_SIZE gives 5 ranks on this node, more "
                                 "than OMPI_COMM_WORLD_SIZE=4"),
            std::string::npos)
      << *detect_error();
  set_env("OMPI_COMM_WORLD_LOCAL_SIZE", "0");
  ASSERT_TRUE(detect_error().has_value());
  EXPECT_NE(detect_error()->find("OMPI_COMM_WORLD_LOCAL_SIZE=0"), std::string::npos);
}

TEST_F(LaunchEnvTest, WorldSizeMustBeSetAndPositive) {
  set_env("PMI_RANK", "0");
  ASSERT_TRUE(detect_error().has_value());
  EXPECT_NE(detect_error()->find("PMI_SIZE"), std::string::npos) << *detect_error();
  set_env("PMI_SIZE", "0");
  ASSERT_TRUE(detect_error().has_value());
  EXPECT_NE(detect_error()->find("PMI_SIZE"), std::string::npos) << *detect_error();
  unsetenv("PMI_RANK");
  unsetenv("PMI_SIZE");
  set_env("OMPI_COMM_WORLD_SIZE", "2");
  ASSERT_TRUE(detect_error().has_value());
  EXPECT_NE(detect_error()->find("OMPI_COMM_WORLD_RANK"), std::string::npos) << *detect_error();
}

}  // namespace
}  // namespace dgqa
