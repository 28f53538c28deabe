// models: the names of the model zoo, without LibTorch, for validating configs.
#pragma once

#include <string>
#include <vector>

namespace edmips {

/// Every model `make_network` can build, in the order the docs list them.
const std::vector<std::string>& model_names();

}  // namespace edmips
