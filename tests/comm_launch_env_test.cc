// detect_rank_info (comm/launch_env.h): rank, world size and local rank from the environment of
// OpenMPI, SLURM and PMI launchers, their precedence, and the errors for malformed values.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "comm/launch_env.h"
#include "common/error.h"

namespace dgqa {
namespace {

const char* const kLaunchVariables[] = {"OMPI_COMM_WORLD_RANK",
                                        "OMPI_COMM_WORLD_SIZE",
                                        "OMPI_COMM_WORLD_LOCAL_RANK",
                                        "SLURM_PROCID",
                                        "SLURM_NTASKS",
                                        "SLURM_LOCALID",
                                        "SLURM_JOB_ID",
                                        "PMI_RANK",
                                        "PMI_SIZE",
                                        "PMIX_RANK",
                                        "MPI_LOCALRANKID",
                                        "PMI_LOCAL_RANK"};

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

  static void Set(const char* name, const char* value) { setenv(name, value, 1); }

  // The message of the InputError detect_rank_info throws, or nothing if it does not throw.
  static std::optional<std::string> DetectError() {
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

void ExpectRankInfo(const RankInfo& info, int rank, int world_size, int local_rank,
                    const std::string& launcher) {
  EXPECT_EQ(info.rank, rank);
  EXPECT_EQ(info.world_size, world_size);
  EXPECT_EQ(info.local_rank, local_rank);
  EXPECT_EQ(info.launcher, launcher);
}

TEST_F(LaunchEnvTest, PlainProcessIsRankZeroOfOne) {
  ExpectRankInfo(detect_rank_info(), 0, 1, 0, "");
}

TEST_F(LaunchEnvTest, OpenMpi) {
  Set("OMPI_COMM_WORLD_RANK", "3");
  Set("OMPI_COMM_WORLD_SIZE", "4");
  Set("OMPI_COMM_WORLD_LOCAL_RANK", "1");
  ExpectRankInfo(detect_rank_info(), 3, 4, 1, "openmpi");
}

TEST_F(LaunchEnvTest, MissingLocalRankMeansZero) {
  Set("OMPI_COMM_WORLD_RANK", "1");
  Set("OMPI_COMM_WORLD_SIZE", "2");
  ExpectRankInfo(detect_rank_info(), 1, 2, 0, "openmpi");
}

TEST_F(LaunchEnvTest, Srun) {
  Set("SLURM_JOB_ID", "777");
  Set("SLURM_PROCID", "5");
  Set("SLURM_NTASKS", "8");
  Set("SLURM_LOCALID", "1");
  ExpectRankInfo(detect_rank_info(), 5, 8, 1, "slurm");
}

TEST_F(LaunchEnvTest, BatchScriptWithoutSrunIsOneProcess) {
  Set("SLURM_JOB_ID", "777");
  ExpectRankInfo(detect_rank_info(), 0, 1, 0, "");
  Set("SLURM_NTASKS", "8");
  ExpectRankInfo(detect_rank_info(), 0, 1, 0, "");
}

TEST_F(LaunchEnvTest, Pmi) {
  Set("PMI_RANK", "2");
  Set("PMI_SIZE", "3");
  Set("MPI_LOCALRANKID", "2");
  ExpectRankInfo(detect_rank_info(), 2, 3, 2, "pmi");
  unsetenv("MPI_LOCALRANKID");
  Set("PMI_LOCAL_RANK", "1");
  ExpectRankInfo(detect_rank_info(), 2, 3, 1, "pmi");
}

TEST_F(LaunchEnvTest, PmixRank) {
  Set("PMIX_RANK", "1");
  Set("PMI_SIZE", "2");
  ExpectRankInfo(detect_rank_info(), 1, 2, 0, "pmi");
}

TEST_F(LaunchEnvTest, OpenMpiWinsOverSlurmWhichWinsOverPmi) {
  Set("PMI_RANK", "0");
  Set("PMI_SIZE", "6");
  Set("PMIX_RANK", "0");
  ExpectRankInfo(detect_rank_info(), 0, 6, 0, "pmi");
  Set("SLURM_PROCID", "1");
  Set("SLURM_NTASKS", "5");
  ExpectRankInfo(detect_rank_info(), 1, 5, 0, "slurm");
  Set("OMPI_COMM_WORLD_RANK", "2");
  Set("OMPI_COMM_WORLD_SIZE", "4");
  ExpectRankInfo(detect_rank_info(), 2, 4, 0, "openmpi");
}

TEST_F(LaunchEnvTest, PmiRankWinsOverPmixRank) {
  Set("PMIX_RANK", "0");
  Set("PMI_RANK", "1");
  Set("PMI_SIZE", "2");
  ExpectRankInfo(detect_rank_info(), 1, 2, 0, "pmi");
}

TEST_F(LaunchEnvTest, MalformedNumbersNameTheVariable) {
  Set("OMPI_COMM_WORLD_SIZE", "4");
  for (const char* bad : {"", "abc", "1x", " 1", "+1", "-1", "1.0", "99999999999"}) {
    Set("OMPI_COMM_WORLD_RANK", bad);
    const std::optional<std::string> error = DetectError();
    ASSERT_TRUE(error.has_value()) << "value '" << bad << "' accepted";
    EXPECT_NE(error->find("OMPI_COMM_WORLD_RANK"), std::string::npos) << *error;
  }
}

TEST_F(LaunchEnvTest, MalformedSlurmAndPmiValuesNameTheVariable) {
  Set("SLURM_PROCID", "0");
  Set("SLURM_NTASKS", "two");
  ASSERT_TRUE(DetectError().has_value());
  EXPECT_NE(DetectError()->find("SLURM_NTASKS"), std::string::npos);
  unsetenv("SLURM_PROCID");
  unsetenv("SLURM_NTASKS");
  Set("PMI_RANK", "0");
  Set("PMI_SIZE", "2");
  Set("MPI_LOCALRANKID", "x");
  ASSERT_TRUE(DetectError().has_value());
  EXPECT_NE(DetectError()->find("MPI_LOCALRANKID"), std::string::npos);
}

TEST_F(LaunchEnvTest, RankMustBeBelowWorldSize) {
  Set("SLURM_PROCID", "4");
  Set("SLURM_NTASKS", "4");
  ASSERT_TRUE(DetectError().has_value());
  EXPECT_NE(DetectError()->find("SLURM_PROCID=4 is not below SLURM_NTASKS=4"), std::string::npos)
      << *DetectError();
  Set("SLURM_PROCID", "3");
  Set("SLURM_LOCALID", "4");
  ASSERT_TRUE(DetectError().has_value());
  EXPECT_NE(DetectError()->find("SLURM_LOCALID"), std::string::npos) << *DetectError();
}

TEST_F(LaunchEnvTest, WorldSizeMustBeSetAndPositive) {
  Set("PMI_RANK", "0");
  ASSERT_TRUE(DetectError().has_value());
  EXPECT_NE(DetectError()->find("PMI_SIZE"), std::string::npos) << *DetectError();
  Set("PMI_SIZE", "0");
  ASSERT_TRUE(DetectError().has_value());
  EXPECT_NE(DetectError()->find("PMI_SIZE"), std::string::npos) << *DetectError();
  unsetenv("PMI_RANK");
  unsetenv("PMI_SIZE");
  Set("OMPI_COMM_WORLD_SIZE", "2");
  ASSERT_TRUE(DetectError().has_value());
  EXPECT_NE(DetectError()->find("OMPI_COMM_WORLD_RANK"), std::string::npos) << *DetectError();
}

}  // namespace
}  // namespace dgqa
