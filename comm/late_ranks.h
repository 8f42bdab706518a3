// The words of a collective timeout (Note [Naming a late rank] in comm/communicator.h): where
// each peer said it waits, and the sentence that names the ranks that did not arrive. No MPI
// here, so that the sentence can be tested without a job.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace dgqa {

// Where a rank waits, as it answers a peer's query; sent as plain bytes.
struct WaitingIn {
  int64_t sequence = 0;  // the how-many-th collective of its kind on that rank
  char what[88] = {};    // the operation's name, cut to fit, NUL-terminated

  void set_what(const char* name);
};

// For the rank `rank` that timed out in collective number `sequence` named `what`, given every
// rank's answer (nullopt for those that gave none; this rank's own entry is ignored): which
// ranks did not arrive, which wait in another collective, which wait in this one too. For
// example "rank 3 did not arrive (no answer: ...); rank 1 waits in ...; ranks 0, 2 wait here too".
std::string describe_late_ranks(const std::vector<std::optional<WaitingIn>>& answers, int rank,
                                const char* what, int64_t sequence);

}  // namespace dgqa
