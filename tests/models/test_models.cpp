#include <catch2/catch.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "models/model_names.h"
#include "models/network.h"

using namespace edmips;

namespace {
int64_t total_macs(const std::string& model, const ModelInput& input) {
  return network_cost(make_network(model, input, NetworkPrecision{})->layer_reports()).total_macs;
}
}  // namespace

TEST_CASE("resnet18 at 224x224 has about 1.81 G MACs", "[models][macs]") {
  CHECK(double(total_macs("resnet18", {3, 224, 224, 1000})) == Approx(1.81e9).epsilon(0.02));
}

TEST_CASE("resnet50 at 224x224 has about 4.1 G MACs", "[models][macs]") {
  CHECK(double(total_macs("resnet50", {3, 224, 224, 1000})) == Approx(4.1e9).epsilon(0.02));
}

TEST_CASE("CIFAR resnet20 at 32x32 has about 41 M MACs", "[models][macs]") {
  CHECK(double(total_macs("resnet20", {3, 32, 32, 10})) == Approx(41e6).epsilon(0.02));
}

TEST_CASE("every model builds in float, search and fixed form and classifies a batch", "[models]") {
  for (const auto& name : model_names()) {
    const ModelInput input = name.rfind("resnet", 0) == 0 && name != "resnet20" ? ModelInput{3, 64, 64, 7}
                                                                               : ModelInput{1, 28, 28, 7};
    NetworkPrecision search;
    search.mode = PrecisionMode::search;
    search.weight_candidates = {2, 4};
    search.activation_candidates = {2, 4};
    NetworkPrecision fixed;
    fixed.mode = PrecisionMode::fixed;
    fixed.fixed_bits = {{"", 3, 3}};
    for (const auto& precision : {NetworkPrecision{}, search, fixed}) {
      INFO(name << " mode " << int(precision.mode));
      auto net = make_network(name, input, precision);
      const auto out = net->forward(torch::randn({2, input.channels, input.height, input.width}));
      CHECK(out.sizes() == torch::IntArrayRef({2, 7}));
      const auto reports = net->layer_reports();
      CHECK(reports.size() >= 4);
      for (const auto& r : reports) CHECK(r.macs > 0);
      CHECK(net->arch_parameters().size() == (precision.mode == PrecisionMode::search ? 2 * (reports.size() - 2) : 0));
    }
  }
}

TEST_CASE("an unknown model name is rejected with the near spelling", "[models]") {
  CHECK_THROWS_WITH(make_network("resnet19", {3, 32, 32, 10}, NetworkPrecision{}),
                    Catch::Contains("did you mean \"resnet18\""));
}
