#include <catch2/catch.hpp>

#include "core/error.h"
#include "quant/step_sizes.h"

using namespace edmips;

TEST_CASE("computed weight steps match the published constants for 1..4 bits", "[quant][steps]") {
  const double published[] = {1.596, 0.996, 0.586, 0.336};
  for (int bits = 1; bits <= 4; ++bits) {
    INFO("bits = " << bits);
    CHECK(std::abs(weight_step(bits, StepTable::computed) - published[bits - 1]) <= 0.002);
  }
}

TEST_CASE("computed HWGQ activation steps match the published constants for 1..4 bits", "[quant][steps]") {
  const double published[] = {0.799, 0.538, 0.3217, 0.185};
  for (int bits = 1; bits <= 4; ++bits) {
    INFO("bits = " << bits);
    CHECK(std::abs(activation_step(bits, StepTable::computed) - published[bits - 1]) <= 0.002);
  }
}

TEST_CASE("every step for 1..8 bits is a local minimum of the quantization error", "[quant][steps]") {
  for (int bits = 1; bits <= 8; ++bits) {
    INFO("bits = " << bits);
    const double w = weight_step(bits, StepTable::computed), a = activation_step(bits, StepTable::computed);
    CHECK(weight_quantizer_mse(w, bits) < weight_quantizer_mse(w * 1.02, bits));
    CHECK(weight_quantizer_mse(w, bits) < weight_quantizer_mse(w * 0.98, bits));
    CHECK(activation_quantizer_mse(a, bits) < activation_quantizer_mse(a * 1.02, bits));
    CHECK(activation_quantizer_mse(a, bits) < activation_quantizer_mse(a * 0.98, bits));
    if (bits > 1) {
      CHECK(weight_step(bits, StepTable::computed) < weight_step(bits - 1, StepTable::computed));
      CHECK(activation_step(bits, StepTable::computed) < activation_step(bits - 1, StepTable::computed));
    }
  }
}

TEST_CASE("a bit-width outside 1..8 is rejected with a clear error", "[quant][steps]") {
  CHECK_THROWS_AS(weight_step(0, StepTable::computed), ConfigError);
  CHECK_THROWS_WITH(activation_step(9, StepTable::computed), Catch::Contains("[1, 8]"));
}

TEST_CASE("the released step table holds the released constants exactly and the computed steps above 4 bits",
          "[quant][steps]") {
  // models/quant_module.py: gaussian_steps and hwgq_steps.
  const double weights[] = {1.596, 0.996, 0.586, 0.336};
  const double activations[] = {0.799, 0.538, 0.3217, 0.185};
  for (int bits = 1; bits <= 4; ++bits) {
    INFO("bits = " << bits);
    CHECK(weight_step(bits, StepTable::released) == weights[bits - 1]);
    CHECK(activation_step(bits, StepTable::released) == activations[bits - 1]);
  }
  CHECK(weight_step(4, StepTable::released) != weight_step(4, StepTable::computed));
  for (int bits = 5; bits <= 8; ++bits) {
    CHECK(weight_step(bits, StepTable::released) == weight_step(bits, StepTable::computed));
    CHECK(activation_step(bits, StepTable::released) == activation_step(bits, StepTable::computed));
  }
  CHECK_THROWS_AS(weight_step(9, StepTable::released), ConfigError);
  CHECK(step_table_from_string("released") == StepTable::released);
  CHECK(!step_table_from_string("paper").has_value());
}
