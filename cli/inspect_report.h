// The text of `dgqa inspect`'s report: a compact aligned rendering of the JSON object that
// `dgqa inspect --json` prints (docs/design.md §7.5), one section per thing inspected.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace dgqa {

// The report as text; with show_config, the recorded config (protobuf text) at the end.
std::string inspect_text(const nlohmann::ordered_json& report, bool show_config);

}  // namespace dgqa
