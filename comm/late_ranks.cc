#include "comm/late_ranks.h"

#include <cstdio>
#include <cstring>

namespace dgqa {
namespace {

std::string list_ranks(const std::vector<int>& ranks) {
  std::string list = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) {
    list += (i == 0 ? "" : ", ") + std::to_string(ranks[i]);
  }
  return list;
}

}  // namespace

void WaitingIn::set_what(const char* name) {
  std::snprintf(what, sizeof(what), "%s", name);
}

std::string describe_late_ranks(const std::vector<std::optional<WaitingIn>>& answers, int rank,
                                const char* what, int64_t sequence) {
  WaitingIn here_label;
  here_label.set_what(what);  // cut as the answers' names are
  std::vector<int> silent;
  std::vector<int> here;
  std::vector<std::string> parts;
  for (int peer = 0; peer < static_cast<int>(answers.size()); ++peer) {
    if (peer == rank) continue;
    const std::optional<WaitingIn>& answer = answers[peer];
    if (!answer) {
      silent.push_back(peer);
    } else if (answer->sequence == sequence &&
               std::strncmp(answer->what, here_label.what, sizeof(here_label.what)) == 0) {
      here.push_back(peer);
    } else {
      const std::string name(answer->what, strnlen(answer->what, sizeof(answer->what)));
      parts.push_back("rank " + std::to_string(peer) + " waits in " + name + " (its collective " +
                      std::to_string(answer->sequence) + ", this one is " +
                      std::to_string(sequence) + ")");
    }
  }
  if (!silent.empty()) {
    parts.insert(parts.begin(),
                 list_ranks(silent) +
                     " did not arrive (no answer: hangs outside a collective, is stopped, or "
                     "died)");
  }
  if (parts.empty()) parts.push_back("every rank waits in it (MPI does not deliver between them)");
  if (!here.empty()) {
    parts.push_back(list_ranks(here) + (here.size() == 1 ? " waits" : " wait") + " here too");
  }
  std::string line;
  for (const std::string& part : parts) line += (line.empty() ? "" : "; ") + part;
  return line;
}

}  // namespace dgqa
