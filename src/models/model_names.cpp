#include "models/model_names.h"

namespace edmips {

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"simple-cnn", "resnet20", "vgg-small", "resnet18",
                                                 "resnet50",   "googlenet",
                                                 "inception_v3"};
  return names;
}

}  // namespace edmips
