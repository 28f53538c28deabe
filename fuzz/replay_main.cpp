// A main for the libFuzzer harnesses in an ordinary build: runs each file
// named on the command line through LLVMFuzzerTestOneInput once, so CTest
// replays the seed corpus (and any saved finding) on every build, with the
// same link as the fuzzers: edmips_plan alone (edmips_onnx for onnx_graph).
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " FILE...  (runs each file through the harness once)\n";
    return 2;
  }
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      std::cerr << argv[0] << ": cannot read " << argv[i] << "\n";
      return 3;
    }
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  }
  std::cout << argv[0] << ": " << argc - 1 << " inputs replayed\n";
  return 0;
}
