// Catch2 main: the same allocator settings as the edmips binary.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "core/allocator.h"

int main(int argc, char* argv[]) {
  edmips::tune_memory_allocator();
  return Catch::Session().run(argc, argv);
}
