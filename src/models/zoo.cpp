// The model zoo. Conventions (those of the released EdMIPS code,
// models/mixresnet.py and models/quant_resnet.py): every QuantLayer takes a
// pre-activation and applies ReLU/HWGQ to it, and that pre-activation is
// always a BatchNorm output, because HWGQ's fixed steps assume a unit-variance
// input. ResNet blocks normalise their input first (`bn0`); the residual
// stream carries un-normalised sums. docs/edmips-method.md lists per model
// what matches the released code and what differs.
#include <torch/torch.h>

#include "core/error.h"
#include "core/json_reader.h"
#include "models/builtin_graph.h"
#include "models/model_names.h"
#include "models/network.h"
#include "models/onnx_network.h"

namespace edmips {
namespace {

namespace F = torch::nn::functional;

/// A small, fast CNN for demos and tests: 3 searchable convolutions.
class SimpleCnnImpl : public NetworkImpl {
 public:
  SimpleCnnImpl(const ModelInput& in, const NetworkPrecision& precision) {
    LayerBuilder b(precision);
    const int64_t widths[] = {32, 64, 128, 128};
    conv_[0] = register_module("conv1", b.first("conv1", LayerShape::conv(in.channels, widths[0], 3, 1, 1)));
    conv_[1] = register_module("conv2", b.inner("conv2", LayerShape::conv(widths[0], widths[1], 3, 2, 1)));
    conv_[2] = register_module("conv3", b.inner("conv3", LayerShape::conv(widths[1], widths[2], 3, 2, 1)));
    conv_[3] = register_module("conv4", b.inner("conv4", LayerShape::conv(widths[2], widths[3], 3, 1, 1)));
    for (int i = 0; i < 4; ++i) {
      bn_[i] = register_module("bn" + std::to_string(i + 1), torch::nn::BatchNorm2d(widths[i]));
    }
    fc_ = register_module("fc", b.last("fc", LayerShape::linear(widths[3], in.classes)));
    set_layers("simple-cnn", b.finish("simple-cnn"));
  }
  torch::Tensor forward(torch::Tensor x) override {
    for (int i = 0; i < 4; ++i) x = bn_[i](conv_[i](x));
    x = F::adaptive_avg_pool2d(torch::relu(x), F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
    return fc_(x);
  }
  void describe(GraphDescriber& d) const override {
    std::string x = d.input();
    for (int i = 0; i < 4; ++i) x = d.batch_norm(*bn_[i], "bn" + std::to_string(i + 1), d.layer(*conv_[i], x));
    x = d.global_average_pool_flat("pool", d.relu("relu", x));
    d.output(d.layer(*fc_, x));
  }

 private:
  QuantLayer conv_[4]{nullptr, nullptr, nullptr, nullptr};
  torch::nn::BatchNorm2d bn_[4]{nullptr, nullptr, nullptr, nullptr};
  QuantLayer fc_{nullptr};
};

/// conv -> BN as one unit (most models are made of these).
class ConvBnImpl : public torch::nn::Module {
 public:
  ConvBnImpl(LayerBuilder& b, const std::string& name, const LayerShape& shape, bool first = false) {
    conv = register_module("conv", first ? b.first(name, shape) : b.inner(name, shape));
    bn = register_module("bn", torch::nn::BatchNorm2d(shape.out_channels));
  }
  torch::Tensor forward(const torch::Tensor& x) { return bn(conv(x)); }
  std::string describe(GraphDescriber& d, const std::string& x) const {
    return d.batch_norm(*bn, conv->layer_name() + ".bn", d.layer(*conv, x));
  }
  QuantLayer conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
};
TORCH_MODULE(ConvBn);

/// Shows a block's input and the residual it adds to a layout test's probe.
void probe_residual(const ForwardProbe& probe, const std::string& block, const torch::Tensor& input,
                    const torch::Tensor& residual) {
  if (!probe) return;
  probe(block + ".block_input", input);
  probe(block + ".residual", residual);
}

/// ResNet basic block as models/mixresnet.py writes it: a BatchNorm `bn0` on
/// the block input first, so both quantized convolutions (and the 1x1
/// projection) see batch-normalised inputs, which HWGQ's fixed steps assume.
///   out = bn0(x); residual = downsample ? downsample(out) : x
///   return bn2(conv2(bn1(conv1(out)))) + residual
class BasicBlockImpl : public torch::nn::Module {
 public:
  static constexpr int64_t expansion = 1;
  BasicBlockImpl(LayerBuilder& b, std::shared_ptr<const ForwardProbe> probe, const std::string& name, int64_t in,
                 int64_t planes, int64_t stride)
      : name_(name), probe_(std::move(probe)) {
    bn0 = register_module("bn0", torch::nn::BatchNorm2d(in));
    conv1 = register_module("conv1", ConvBn(b, name + ".conv1", LayerShape::conv(in, planes, 3, stride, 1)));
    conv2 = register_module("conv2", ConvBn(b, name + ".conv2", LayerShape::conv(planes, planes, 3, 1, 1)));
    if (stride != 1 || in != planes) {
      shortcut = register_module("downsample",
                                 ConvBn(b, name + ".downsample", LayerShape::conv(in, planes, 1, stride, 0)));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto normalised = bn0(x);
    const auto out = conv2(conv1(normalised));
    const auto residual = shortcut ? shortcut(normalised) : x;
    probe_residual(*probe_, name_, x, residual);
    return out + residual;
  }
  std::string describe(GraphDescriber& d, const std::string& x) const {
    const auto normalised = d.batch_norm(*bn0, name_ + ".bn0", x);
    const auto out = conv2->describe(d, conv1->describe(d, normalised));
    return d.add(name_ + ".add", out, shortcut ? shortcut->describe(d, normalised) : x);
  }
  torch::nn::BatchNorm2d bn0{nullptr};
  ConvBn conv1{nullptr}, conv2{nullptr}, shortcut{nullptr};

 private:
  std::string name_;
  std::shared_ptr<const ForwardProbe> probe_;
};
TORCH_MODULE(BasicBlock);

/// ResNet bottleneck block (1x1, 3x3 with the stride, 1x1 x4) with the same
/// block-input BatchNorm `bn0` as models/mixresnet.py.
class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t expansion = 4;
  BottleneckImpl(LayerBuilder& b, std::shared_ptr<const ForwardProbe> probe, const std::string& name, int64_t in,
                 int64_t planes, int64_t stride)
      : name_(name), probe_(std::move(probe)) {
    const int64_t out = planes * expansion;
    bn0 = register_module("bn0", torch::nn::BatchNorm2d(in));
    conv1 = register_module("conv1", ConvBn(b, name + ".conv1", LayerShape::conv(in, planes, 1)));
    conv2 = register_module("conv2", ConvBn(b, name + ".conv2", LayerShape::conv(planes, planes, 3, stride, 1)));
    conv3 = register_module("conv3", ConvBn(b, name + ".conv3", LayerShape::conv(planes, out, 1)));
    if (stride != 1 || in != out) {
      shortcut = register_module("downsample",
                                 ConvBn(b, name + ".downsample", LayerShape::conv(in, out, 1, stride, 0)));
    }
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto normalised = bn0(x);
    const auto out = conv3(conv2(conv1(normalised)));
    const auto residual = shortcut ? shortcut(normalised) : x;
    probe_residual(*probe_, name_, x, residual);
    return out + residual;
  }
  std::string describe(GraphDescriber& d, const std::string& x) const {
    const auto normalised = d.batch_norm(*bn0, name_ + ".bn0", x);
    const auto out = conv3->describe(d, conv2->describe(d, conv1->describe(d, normalised)));
    return d.add(name_ + ".add", out, shortcut ? shortcut->describe(d, normalised) : x);
  }
  torch::nn::BatchNorm2d bn0{nullptr};
  ConvBn conv1{nullptr}, conv2{nullptr}, conv3{nullptr}, shortcut{nullptr};

 private:
  std::string name_;
  std::shared_ptr<const ForwardProbe> probe_;
};
TORCH_MODULE(Bottleneck);

/// ResNet in CIFAR layout (3x3 stem conv -> BN, 3 stages) or ImageNet layout
/// (7x7 stem conv -> 3x3 max-pool -> BN, as models/mixresnet.py orders it;
/// 4 stages). The stem has no ReLU: the next block's bn0 and HWGQ follow.
template <typename Block>
class ResNetImpl : public NetworkImpl {
 public:
  ResNetImpl(const std::string& model, const ModelInput& in, const NetworkPrecision& precision,
             bool imagenet_layout, const std::vector<int64_t>& planes, const std::vector<int64_t>& blocks) {
    LayerBuilder b(precision);
    imagenet_layout_ = imagenet_layout;
    const auto stem = imagenet_layout ? LayerShape::conv(in.channels, planes[0], 7, 2, 3)
                                      : LayerShape::conv(in.channels, planes[0], 3, 1, 1);
    stem_conv_ = register_module("conv1", b.first("conv1", stem));
    stem_bn_ = register_module("bn1", torch::nn::BatchNorm2d(planes[0]));
    int64_t channels = planes[0];
    for (size_t stage = 0; stage < planes.size(); ++stage) {
      for (int64_t i = 0; i < blocks[stage]; ++i) {
        const int64_t stride = (stage > 0 && i == 0) ? 2 : 1;
        const std::string name = "layer" + std::to_string(stage + 1) + "." + std::to_string(i);
        body_->push_back(std::make_shared<Block>(b, probe(), name, channels, planes[stage], stride));
        channels = planes[stage] * Block::expansion;
      }
    }
    register_module("body", body_);
    fc_ = register_module("fc", b.last("fc", LayerShape::linear(channels, in.classes)));
    set_layers(model, b.finish(model));
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = stem_conv_(x);
    if (imagenet_layout_) x = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
    x = stem_bn_(x);
    if (const auto& p = *probe()) p("stem", x);
    x = body_->forward(x);
    x = F::adaptive_avg_pool2d(torch::relu(x), F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
    return fc_(x);
  }
  void describe(GraphDescriber& d) const override {
    std::string x = d.layer(*stem_conv_, d.input());
    if (imagenet_layout_) x = d.max_pool("maxpool", x, 3, 2, 1);
    x = d.batch_norm(*stem_bn_, "bn1", x);
    for (const auto& block : body_->children()) x = block->as<Block>()->describe(d, x);
    x = d.global_average_pool_flat("pool", d.relu("relu", x));
    d.output(d.layer(*fc_, x));
  }

 private:
  bool imagenet_layout_ = false;
  QuantLayer stem_conv_{nullptr};
  torch::nn::BatchNorm2d stem_bn_{nullptr};
  torch::nn::Sequential body_;
  QuantLayer fc_{nullptr};
};

/// VGG-small (HWGQ/LQ-Nets CIFAR model): 6 convs 128-128-256-256-512-512,
/// 3 max-pools. Where a max-pool follows a conv it comes before the BN (conv
/// -> max-pool -> BN, the order of the released ResNet stem), so every
/// quantized conv's HWGQ sees a batch-normalised input.
class VggSmallImpl : public NetworkImpl {
 public:
  VggSmallImpl(const ModelInput& in, const NetworkPrecision& precision) {
    LayerBuilder b(precision);
    const int64_t widths[] = {128, 128, 256, 256, 512, 512};
    int64_t channels = in.channels, height = in.height, width = in.width;
    for (int i = 0; i < 6; ++i) {
      const std::string name = "conv" + std::to_string(i + 1);
      const auto shape = LayerShape::conv(channels, widths[i], 3, 1, 1);
      convs_.push_back(register_module(name, i == 0 ? b.first(name, shape) : b.inner(name, shape)));
      bns_.push_back(register_module("bn" + std::to_string(i + 1), torch::nn::BatchNorm2d(widths[i])));
      channels = widths[i];
      if (i % 2 == 1) {
        height /= 2;
        width /= 2;
      }
    }
    if (height < 1 || width < 1) throw ConfigError("vgg-small needs inputs of at least 8x8");
    fc_ = register_module("fc", b.last("fc", LayerShape::linear(channels * height * width, in.classes)));
    set_layers("vgg-small", b.finish("vgg-small"));
  }
  torch::Tensor forward(torch::Tensor x) override {
    for (size_t i = 0; i < convs_.size(); ++i) {
      x = convs_[i](x);
      if (i % 2 == 1) x = F::max_pool2d(x, F::MaxPool2dFuncOptions(2));
      x = bns_[i](x);
    }
    return fc_(torch::relu(x).flatten(1));
  }
  void describe(GraphDescriber& d) const override {
    std::string x = d.input();
    for (size_t i = 0; i < convs_.size(); ++i) {
      x = d.layer(*convs_[i], x);
      if (i % 2 == 1) x = d.max_pool("pool" + std::to_string(i / 2 + 1), x, 2, 2, 0);
      x = d.batch_norm(*bns_[i], "bn" + std::to_string(i + 1), x);
    }
    d.output(d.layer(*fc_, d.flatten("flatten", d.relu("relu", x))));
  }

 private:
  std::vector<QuantLayer> convs_;
  std::vector<torch::nn::BatchNorm2d> bns_;
  QuantLayer fc_{nullptr};
};

Network build(const std::string& name, const ModelInput& in, const NetworkPrecision& p) {
  if (name == "simple-cnn") return std::make_shared<SimpleCnnImpl>(in, p);
  if (name == "resnet20")
    return std::make_shared<ResNetImpl<BasicBlockImpl>>(name, in, p, false, std::vector<int64_t>{16, 32, 64},
                                                    std::vector<int64_t>{3, 3, 3});
  if (name == "vgg-small") return std::make_shared<VggSmallImpl>(in, p);
  if (name == "resnet18")
    return std::make_shared<ResNetImpl<BasicBlockImpl>>(name, in, p, true, std::vector<int64_t>{64, 128, 256, 512},
                                                    std::vector<int64_t>{2, 2, 2, 2});
  if (name == "resnet50")
    return std::make_shared<ResNetImpl<BottleneckImpl>>(name, in, p, true, std::vector<int64_t>{64, 128, 256, 512},
                                                    std::vector<int64_t>{3, 4, 6, 3});
  std::string message = "unknown model \"" + name + "\"";
  if (auto near = closest_spelling(name, model_names())) message += "; did you mean \"" + *near + "\"?";
  throw ConfigError(message);
}

}  // namespace

Network make_network(const std::string& name, const ModelInput& input, const NetworkPrecision& precision) {
  auto network = build(name, input, precision);
  // One probe sample in eval mode (no BatchNorm statistics touched) tells
  // every layer its output size and hence its MACs.
  torch::NoGradGuard no_grad;
  network->eval();
  network->forward(torch::zeros({1, input.channels, input.height, input.width}));
  network->train();
  return network;
}

Network make_network(const ModelSpec& model, const ModelInput& input, const NetworkPrecision& precision) {
  if (model.onnx_path.empty()) return make_network(model.name, input, precision);
  return make_onnx_network(onnx::read_graph(model.onnx_path), model.name, input, precision, model.imported_weights);
}

}  // namespace edmips
