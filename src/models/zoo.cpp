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
#include "nn/batch_norm.h"

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
    for (int i = 0; i < 4; ++i) x = apply_batch_norm(*bn_[i], conv_[i](x));
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
  torch::Tensor forward(const torch::Tensor& x) { return apply_batch_norm(*bn, conv(x)); }
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
    const auto normalised = apply_batch_norm(*bn0, x);
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
    const auto normalised = apply_batch_norm(*bn0, x);
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
    x = apply_batch_norm(*stem_bn_, x);
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
      x = apply_batch_norm(*bns_[i], x);
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

/// The BatchNorm of the released GoogLeNet (models/mixgoogle.py): eps 1e-3.
torch::nn::BatchNorm2d google_bn(int64_t channels) {
  return torch::nn::BatchNorm2d(torch::nn::BatchNorm2dOptions(channels).eps(1e-3));
}

/// Fills `w` with N(0, std) truncated at two standard deviations, as the
/// released GoogLeNet's scipy.stats.truncnorm(-2, 2, scale=0.01): uniform
/// draws inside the normal CDF's [-2, 2] mapped back through its inverse.
void truncated_normal_(torch::Tensor w, double std) {
  torch::NoGradGuard no_grad;
  const double edge = std::erf(2.0 / std::sqrt(2.0));
  w.uniform_(-edge, edge).erfinv_().mul_(std * std::sqrt(2.0));
}

/// BN -> quantized conv as one unit: the released BasicQuantConv2d, whose
/// BatchNorm normalises the conv's input (not its output).
class BnConvImpl : public torch::nn::Module {
 public:
  BnConvImpl(LayerBuilder& b, const std::string& name, const LayerShape& shape) {
    bn = register_module("bn", google_bn(shape.in_channels));
    conv = register_module("conv", b.inner(name, shape));
  }
  torch::Tensor forward(const torch::Tensor& x) { return conv(apply_batch_norm(*bn, x)); }
  std::string describe(GraphDescriber& d, const std::string& x) const {
    return d.layer(*conv, d.batch_norm(*bn, conv->layer_name() + ".bn", x));
  }
  torch::nn::BatchNorm2d bn{nullptr};
  QuantLayer conv{nullptr};
};
TORCH_MODULE(BnConv);

/// GoogLeNet's Inception module as models/mixgoogle.py writes it: the pool
/// branch max-pools the raw input and normalises it in its own BN; the other
/// three branches share one BN of the input; every 1x1 reduction feeds a
/// BN -> conv. The four raw conv outputs are concatenated (the next module
/// normalises them). Layers are made in the released order: branch1,
/// branch2_1, branch2_2, branch3_1, branch3_2, branch4 (its cfg lists' order).
class InceptionModuleImpl : public torch::nn::Module {
 public:
  InceptionModuleImpl(LayerBuilder& b, const std::string& name, int64_t in, int64_t ch1x1, int64_t ch3x3red,
                      int64_t ch3x3, int64_t ch5x5red, int64_t ch5x5, int64_t pool_proj)
      : name_(name) {
    bn = register_module("bn", google_bn(in));
    branch1 = register_module("branch1", b.inner(name + ".branch1", LayerShape::conv(in, ch1x1, 1)));
    branch2_1 = register_module("branch2_1", b.inner(name + ".branch2_1", LayerShape::conv(in, ch3x3red, 1)));
    branch2_2 = register_module("branch2_2", BnConv(b, name + ".branch2_2", LayerShape::conv(ch3x3red, ch3x3, 3, 1, 1)));
    branch3_1 = register_module("branch3_1", b.inner(name + ".branch3_1", LayerShape::conv(in, ch5x5red, 1)));
    branch3_2 = register_module("branch3_2", BnConv(b, name + ".branch3_2", LayerShape::conv(ch5x5red, ch5x5, 5, 1, 2)));
    branch4 = register_module("branch4", BnConv(b, name + ".branch4", LayerShape::conv(in, pool_proj, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    const auto pooled = branch4(F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(1).padding(1).ceil_mode(true)));
    const auto normalised = apply_batch_norm(*bn, x);
    return torch::cat({branch1(normalised), branch2_2(branch2_1(normalised)), branch3_2(branch3_1(normalised)), pooled},
                      1);
  }
  std::string describe(GraphDescriber& d, const std::string& x) const {
    const auto pooled = branch4->describe(d, d.max_pool(name_ + ".pool", x, 3, 1, 1, true));
    const auto normalised = d.batch_norm(*bn, name_ + ".bn", x);
    return d.concat(name_ + ".concat", {d.layer(*branch1, normalised),
                                        branch2_2->describe(d, d.layer(*branch2_1, normalised)),
                                        branch3_2->describe(d, d.layer(*branch3_1, normalised)), pooled});
  }
  torch::nn::BatchNorm2d bn{nullptr};
  QuantLayer branch1{nullptr}, branch2_1{nullptr}, branch3_1{nullptr};
  BnConv branch2_2{nullptr}, branch3_2{nullptr}, branch4{nullptr};

 private:
  std::string name_;
};
TORCH_MODULE(InceptionModule);

/// GoogLeNet as the released models/mixgoogle.py (search) and
/// quant_googlenet.py (retraining) build it: 7x7 float stem conv -> max-pool
/// -> BN -> conv2 (1x1) -> BN -> conv3 (3x3) -> max-pool, nine Inception
/// modules (5x5 convs in the third branch, as the paper's network, not
/// torchvision's 3x3), max-pools with ceil_mode, a final BN -> ReLU ->
/// average pool -> float fc. No auxiliary heads (both released builders
/// default to aux_logits=False and main.py/search.py never set it), no
/// dropout. Conv and fc weights start from N(0, 0.01) truncated at 2 std.
/// 56 searched layers; the first is conv2.
class GoogLeNetImpl : public NetworkImpl {
 public:
  GoogLeNetImpl(const ModelInput& in, const NetworkPrecision& precision) {
    LayerBuilder b(precision);
    conv1_ = register_module("conv1", b.first("conv1", LayerShape::conv(in.channels, 64, 7, 2, 3)));
    conv2_ = register_module("conv2", BnConv(b, "conv2", LayerShape::conv(64, 64, 1)));
    conv3_ = register_module("conv3", BnConv(b, "conv3", LayerShape::conv(64, 192, 3, 1, 1)));
    struct Module {
      const char* name;
      int64_t in, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj;
    };
    const Module modules[] = {{"inception3a", 192, 64, 96, 128, 16, 32, 32},
                              {"inception3b", 256, 128, 128, 192, 32, 96, 64},
                              {"inception4a", 480, 192, 96, 208, 16, 48, 64},
                              {"inception4b", 512, 160, 112, 224, 24, 64, 64},
                              {"inception4c", 512, 128, 128, 256, 24, 64, 64},
                              {"inception4d", 512, 112, 144, 288, 32, 64, 64},
                              {"inception4e", 528, 256, 160, 320, 32, 128, 128},
                              {"inception5a", 832, 256, 160, 320, 32, 128, 128},
                              {"inception5b", 832, 384, 192, 384, 48, 128, 128}};
    for (const auto& m : modules) {
      inceptions_.push_back(register_module(
          m.name, InceptionModule(b, m.name, m.in, m.ch1x1, m.ch3x3red, m.ch3x3, m.ch5x5red, m.ch5x5, m.pool_proj)));
    }
    bn_ = register_module("inception5b_bn", google_bn(1024));
    fc_ = register_module("fc", b.last("fc", LayerShape::linear(1024, in.classes)));
    set_layers("googlenet", b.finish("googlenet"));
    for (const auto& layer : layers()) truncated_normal_(layer->weight, 0.01);
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = pool(conv1_(x), 3);
    x = pool(conv3_(conv2_(x)), 3);
    for (size_t i = 0; i < inceptions_.size(); ++i) {
      x = inceptions_[i](x);
      if (i == 1) x = pool(x, 3);  // after inception3b
      if (i == 6) x = pool(x, 2);  // after inception4e
    }
    x = F::adaptive_avg_pool2d(torch::relu(apply_batch_norm(*bn_, x)), F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
    return fc_(x);
  }
  void describe(GraphDescriber& d) const override {
    std::string x = d.max_pool("maxpool1", d.layer(*conv1_, d.input()), 3, 2, 0, true);
    x = d.max_pool("maxpool2", conv3_->describe(d, conv2_->describe(d, x)), 3, 2, 0, true);
    for (size_t i = 0; i < inceptions_.size(); ++i) {
      x = inceptions_[i]->describe(d, x);
      if (i == 1) x = d.max_pool("maxpool3", x, 3, 2, 0, true);
      if (i == 6) x = d.max_pool("maxpool4", x, 2, 2, 0, true);
    }
    x = d.global_average_pool_flat("pool", d.relu("relu", d.batch_norm(*bn_, "inception5b_bn", x)));
    d.output(d.layer(*fc_, x));
  }

 private:
  static torch::Tensor pool(const torch::Tensor& x, int64_t kernel) {
    return F::max_pool2d(x, F::MaxPool2dFuncOptions(kernel).stride(2).ceil_mode(true));
  }
  QuantLayer conv1_{nullptr};
  BnConv conv2_{nullptr}, conv3_{nullptr};
  std::vector<InceptionModule> inceptions_;
  torch::nn::BatchNorm2d bn_{nullptr};
  QuantLayer fc_{nullptr};
};

/// A convolution with a (kh, kw) kernel, the Inception-V3 factorised forms.
LayerShape conv_hw(int64_t in, int64_t out, int64_t kh, int64_t kw, int64_t ph, int64_t pw, int64_t stride = 1) {
  auto s = LayerShape::conv(in, out, 1, stride, 0);
  s.kernel = {kh, kw};
  s.padding = {ph, pw};
  return s;
}

/// Inception-V3's modules compute with tensors (forward) and write their
/// graph (describe) from one description: each module's `run` is written
/// once against these two sets of operations.
struct TensorOps {
  using Value = torch::Tensor;
  Value layer(const QuantLayer& l, const Value& x) { return l.ptr()->forward(x); }
  Value bn(const torch::nn::BatchNorm2d& bn, const std::string&, const Value& x) {
    return apply_batch_norm(*bn.ptr(), x);
  }
  Value bn_conv(const BnConv& m, const Value& x) { return m.ptr()->forward(x); }
  /// count_include_pad, as PyTorch's F.avg_pool2d defaults to.
  Value avg_pool(const std::string&, const Value& x) {
    return F::avg_pool2d(x, F::AvgPool2dFuncOptions(3).stride(1).padding(1));
  }
  Value max_pool(const std::string&, const Value& x) { return F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2)); }
  Value concat(const std::string&, const std::vector<Value>& xs) { return torch::cat(xs, 1); }
};

struct GraphOps {
  using Value = std::string;
  GraphDescriber& d;
  Value layer(const QuantLayer& l, const Value& x) { return d.layer(*l, x); }
  Value bn(const torch::nn::BatchNorm2d& bn, const std::string& name, const Value& x) {
    return d.batch_norm(*bn, name, x);
  }
  Value bn_conv(const BnConv& m, const Value& x) { return m->describe(d, x); }
  Value avg_pool(const std::string& name, const Value& x) { return d.average_pool(name, x, 3, 1, 1); }
  Value max_pool(const std::string& name, const Value& x) { return d.max_pool(name, x, 3, 2, 0); }
  Value concat(const std::string& name, const std::vector<Value>& xs) { return d.concat(name, xs); }
};

/// The parts every Inception-V3 module (models/mixinception.py) shares: one
/// BN of the module input for the branches that start with a quantized
/// 1x1, and a pool branch on the raw input. Layers are made in the released
/// order, which is its cfg lists' order.
class InceptionV3ModuleImpl : public torch::nn::Module {
 public:
  InceptionV3ModuleImpl(LayerBuilder& b, std::string name, int64_t in) : b_(b), name_(std::move(name)) {
    bn = register_module("bn", google_bn(in));
  }
  virtual ~InceptionV3ModuleImpl() = default;
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  virtual std::string describe(GraphDescriber& d, const std::string& x) const = 0;

 protected:
  QuantLayer conv(const std::string& branch, const LayerShape& shape) {
    return register_module(branch, b_.inner(name_ + "." + branch, shape));
  }
  BnConv bn_conv(const std::string& branch, const LayerShape& shape) {
    return register_module(branch, BnConv(b_, name_ + "." + branch, shape));
  }
  torch::nn::BatchNorm2d inner_bn(const std::string& branch, int64_t channels) {
    return register_module(branch, google_bn(channels));
  }
  std::string part(const std::string& what) const { return name_ + "." + what; }
  torch::nn::BatchNorm2d bn{nullptr};

 private:
  LayerBuilder& b_;  // construction only
  std::string name_;
};

#define EDMIPS_INCEPTION_V3_RUN                                                                      \
  torch::Tensor forward(const torch::Tensor& x) override {                                           \
    TensorOps ops;                                                                                   \
    return run(ops, x);                                                                              \
  }                                                                                                  \
  std::string describe(GraphDescriber& d, const std::string& x) const override {                     \
    GraphOps ops{d};                                                                                 \
    return run(ops, x);                                                                              \
  }

/// InceptionA (Mixed_5b-5d): 1x1; 1x1 -> 5x5; 1x1 -> 3x3 -> 3x3; avg-pool -> 1x1.
class InceptionAImpl : public InceptionV3ModuleImpl {
 public:
  InceptionAImpl(LayerBuilder& b, const std::string& name, int64_t in, int64_t pool_features)
      : InceptionV3ModuleImpl(b, name, in) {
    b1 = conv("branch1x1", LayerShape::conv(in, 64, 1));
    b5_1 = conv("branch5x5_1", LayerShape::conv(in, 48, 1));
    b5_2 = bn_conv("branch5x5_2", LayerShape::conv(48, 64, 5, 1, 2));
    d_1 = conv("branch3x3dbl_1", LayerShape::conv(in, 64, 1));
    d_2 = bn_conv("branch3x3dbl_2", LayerShape::conv(64, 96, 3, 1, 1));
    d_3 = bn_conv("branch3x3dbl_3", LayerShape::conv(96, 96, 3, 1, 1));
    pool = bn_conv("branch_pool", LayerShape::conv(in, pool_features, 1));
  }
  EDMIPS_INCEPTION_V3_RUN
  template <class Ops>
  typename Ops::Value run(Ops& o, const typename Ops::Value& x) const {
    const auto pooled = o.bn_conv(pool, o.avg_pool(part("pool"), x));
    const auto n = o.bn(bn, part("bn"), x);
    return o.concat(part("concat"), {o.layer(b1, n), o.bn_conv(b5_2, o.layer(b5_1, n)),
                                     o.bn_conv(d_3, o.bn_conv(d_2, o.layer(d_1, n))), pooled});
  }
  QuantLayer b1{nullptr}, b5_1{nullptr}, d_1{nullptr};
  BnConv b5_2{nullptr}, d_2{nullptr}, d_3{nullptr}, pool{nullptr};
};

/// InceptionB (Mixed_6a, the 35 -> 17 reduction): 3x3 stride 2; 1x1 -> 3x3 ->
/// 3x3 stride 2; a max-pool of the raw input (no conv).
class InceptionBImpl : public InceptionV3ModuleImpl {
 public:
  InceptionBImpl(LayerBuilder& b, const std::string& name, int64_t in) : InceptionV3ModuleImpl(b, name, in) {
    b3 = conv("branch3x3", LayerShape::conv(in, 384, 3, 2, 0));
    d_1 = conv("branch3x3dbl_1", LayerShape::conv(in, 64, 1));
    d_2 = bn_conv("branch3x3dbl_2", LayerShape::conv(64, 96, 3, 1, 1));
    d_3 = bn_conv("branch3x3dbl_3", LayerShape::conv(96, 96, 3, 2, 0));
  }
  EDMIPS_INCEPTION_V3_RUN
  template <class Ops>
  typename Ops::Value run(Ops& o, const typename Ops::Value& x) const {
    const auto pooled = o.max_pool(part("pool"), x);
    const auto n = o.bn(bn, part("bn"), x);
    return o.concat(part("concat"), {o.layer(b3, n), o.bn_conv(d_3, o.bn_conv(d_2, o.layer(d_1, n))), pooled});
  }
  QuantLayer b3{nullptr}, d_1{nullptr};
  BnConv d_2{nullptr}, d_3{nullptr};
};

/// InceptionC (Mixed_6b-6e): 1x1; 1x1 -> 1x7 -> 7x1; 1x1 -> 7x1 -> 1x7 -> 7x1 ->
/// 1x7; avg-pool -> 1x1.
class InceptionCImpl : public InceptionV3ModuleImpl {
 public:
  InceptionCImpl(LayerBuilder& b, const std::string& name, int64_t in, int64_t c7)
      : InceptionV3ModuleImpl(b, name, in) {
    b1 = conv("branch1x1", LayerShape::conv(in, 192, 1));
    s_1 = conv("branch7x7_1", LayerShape::conv(in, c7, 1));
    s_2 = bn_conv("branch7x7_2", conv_hw(c7, c7, 1, 7, 0, 3));
    s_3 = bn_conv("branch7x7_3", conv_hw(c7, 192, 7, 1, 3, 0));
    d_1 = conv("branch7x7dbl_1", LayerShape::conv(in, c7, 1));
    d_2 = bn_conv("branch7x7dbl_2", conv_hw(c7, c7, 7, 1, 3, 0));
    d_3 = bn_conv("branch7x7dbl_3", conv_hw(c7, c7, 1, 7, 0, 3));
    d_4 = bn_conv("branch7x7dbl_4", conv_hw(c7, c7, 7, 1, 3, 0));
    d_5 = bn_conv("branch7x7dbl_5", conv_hw(c7, 192, 1, 7, 0, 3));
    pool = bn_conv("branch_pool", LayerShape::conv(in, 192, 1));
  }
  EDMIPS_INCEPTION_V3_RUN
  template <class Ops>
  typename Ops::Value run(Ops& o, const typename Ops::Value& x) const {
    const auto pooled = o.bn_conv(pool, o.avg_pool(part("pool"), x));
    const auto n = o.bn(bn, part("bn"), x);
    const auto seven = o.bn_conv(s_3, o.bn_conv(s_2, o.layer(s_1, n)));
    const auto dbl = o.bn_conv(d_5, o.bn_conv(d_4, o.bn_conv(d_3, o.bn_conv(d_2, o.layer(d_1, n)))));
    return o.concat(part("concat"), {o.layer(b1, n), seven, dbl, pooled});
  }
  QuantLayer b1{nullptr}, s_1{nullptr}, d_1{nullptr};
  BnConv s_2{nullptr}, s_3{nullptr}, d_2{nullptr}, d_3{nullptr}, d_4{nullptr}, d_5{nullptr}, pool{nullptr};
};

/// InceptionD (Mixed_7a, the 17 -> 8 reduction): 1x1 -> 3x3 stride 2; 1x1 ->
/// 1x7 -> 7x1 -> 3x3 stride 2; a max-pool of the raw input.
class InceptionDImpl : public InceptionV3ModuleImpl {
 public:
  InceptionDImpl(LayerBuilder& b, const std::string& name, int64_t in) : InceptionV3ModuleImpl(b, name, in) {
    t_1 = conv("branch3x3_1", LayerShape::conv(in, 192, 1));
    t_2 = bn_conv("branch3x3_2", LayerShape::conv(192, 320, 3, 2, 0));
    s_1 = conv("branch7x7x3_1", LayerShape::conv(in, 192, 1));
    s_2 = bn_conv("branch7x7x3_2", conv_hw(192, 192, 1, 7, 0, 3));
    s_3 = bn_conv("branch7x7x3_3", conv_hw(192, 192, 7, 1, 3, 0));
    s_4 = bn_conv("branch7x7x3_4", LayerShape::conv(192, 192, 3, 2, 0));
  }
  EDMIPS_INCEPTION_V3_RUN
  template <class Ops>
  typename Ops::Value run(Ops& o, const typename Ops::Value& x) const {
    const auto pooled = o.max_pool(part("pool"), x);
    const auto n = o.bn(bn, part("bn"), x);
    return o.concat(part("concat"), {o.bn_conv(t_2, o.layer(t_1, n)),
                                     o.bn_conv(s_4, o.bn_conv(s_3, o.bn_conv(s_2, o.layer(s_1, n)))), pooled});
  }
  QuantLayer t_1{nullptr}, s_1{nullptr};
  BnConv t_2{nullptr}, s_2{nullptr}, s_3{nullptr}, s_4{nullptr};
};

/// InceptionE (Mixed_7b, 7c): 1x1; 1x1 -> BN -> (1x3 | 3x1); 1x1 -> 3x3 -> BN ->
/// (1x3 | 3x1); avg-pool -> 1x1. The split pairs quantize one shared BN.
class InceptionEImpl : public InceptionV3ModuleImpl {
 public:
  InceptionEImpl(LayerBuilder& b, const std::string& name, int64_t in) : InceptionV3ModuleImpl(b, name, in) {
    b1 = conv("branch1x1", LayerShape::conv(in, 320, 1));
    t_1 = conv("branch3x3_1", LayerShape::conv(in, 384, 1));
    t_bn = inner_bn("branch3x3_bn", 384);
    t_2a = conv("branch3x3_2a", conv_hw(384, 384, 1, 3, 0, 1));
    t_2b = conv("branch3x3_2b", conv_hw(384, 384, 3, 1, 1, 0));
    d_1 = conv("branch3x3dbl_1", LayerShape::conv(in, 448, 1));
    d_2 = bn_conv("branch3x3dbl_2", LayerShape::conv(448, 384, 3, 1, 1));
    d_bn = inner_bn("branch3x3dbl_bn", 384);
    d_3a = conv("branch3x3dbl_3a", conv_hw(384, 384, 1, 3, 0, 1));
    d_3b = conv("branch3x3dbl_3b", conv_hw(384, 384, 3, 1, 1, 0));
    pool = bn_conv("branch_pool", LayerShape::conv(in, 192, 1));
  }
  EDMIPS_INCEPTION_V3_RUN
  template <class Ops>
  typename Ops::Value run(Ops& o, const typename Ops::Value& x) const {
    const auto pooled = o.bn_conv(pool, o.avg_pool(part("pool"), x));
    const auto n = o.bn(bn, part("bn"), x);
    const auto t = o.bn(t_bn, part("branch3x3_bn"), o.layer(t_1, n));
    const auto three = o.concat(part("branch3x3"), {o.layer(t_2a, t), o.layer(t_2b, t)});
    const auto u = o.bn(d_bn, part("branch3x3dbl_bn"), o.bn_conv(d_2, o.layer(d_1, n)));
    const auto dbl = o.concat(part("branch3x3dbl"), {o.layer(d_3a, u), o.layer(d_3b, u)});
    return o.concat(part("concat"), {o.layer(b1, n), three, dbl, pooled});
  }
  QuantLayer b1{nullptr}, t_1{nullptr}, t_2a{nullptr}, t_2b{nullptr}, d_1{nullptr}, d_3a{nullptr}, d_3b{nullptr};
  torch::nn::BatchNorm2d t_bn{nullptr}, d_bn{nullptr};
  BnConv d_2{nullptr}, pool{nullptr};
};
#undef EDMIPS_INCEPTION_V3_RUN

/// Inception-V3 as the released models/mixinception.py (search) and
/// quant_inception.py (retraining) build it: a float 3x3 stride-2 stem conv,
/// then BN -> quantized convs Conv2d_2a (3x3), 2b (3x3), max-pool, 3b (1x1),
/// 4a (3x3), max-pool; Mixed_5b-5d (A), 6a (B), 6b-6e (C), 7a (D), 7b-7c
/// (E); BN -> ReLU -> average pool -> float fc. BN eps 1e-3; conv and fc
/// weights from N(0, 0.1) truncated at 2 std; no auxiliary head (the released
/// builders default to aux_logits=False and no script sets it), no dropout.
/// 93 searched layers; the first is Conv2d_2a_3x3. Needs inputs of at least
/// 75x75 (299x299 in the paper).
class InceptionV3Impl : public NetworkImpl {
 public:
  InceptionV3Impl(const ModelInput& in, const NetworkPrecision& precision) {
    if (in.height < 75 || in.width < 75) {
      throw ConfigError("inception_v3 needs inputs of at least 75x75 (its stem and two reductions take 75x75 to "
                        "1x1), not " + std::to_string(in.height) + "x" + std::to_string(in.width) +
                        "; with an image folder set dataset.image_size (its default for inception_v3 is 299)");
    }
    LayerBuilder b(precision);
    stem_ = register_module("Conv2d_1a_3x3", b.first("Conv2d_1a_3x3", LayerShape::conv(in.channels, 32, 3, 2, 0)));
    stem_convs_[0] = register_module("Conv2d_2a_3x3", BnConv(b, "Conv2d_2a_3x3", LayerShape::conv(32, 32, 3)));
    stem_convs_[1] = register_module("Conv2d_2b_3x3", BnConv(b, "Conv2d_2b_3x3", LayerShape::conv(32, 64, 3, 1, 1)));
    stem_convs_[2] = register_module("Conv2d_3b_1x1", BnConv(b, "Conv2d_3b_1x1", LayerShape::conv(64, 80, 1)));
    stem_convs_[3] = register_module("Conv2d_4a_3x3", BnConv(b, "Conv2d_4a_3x3", LayerShape::conv(80, 192, 3)));
    auto add = [&](const std::string& name, auto module) { modules_.push_back(register_module(name, module)); };
    add("Mixed_5b", std::make_shared<InceptionAImpl>(b, "Mixed_5b", 192, 32));
    add("Mixed_5c", std::make_shared<InceptionAImpl>(b, "Mixed_5c", 256, 64));
    add("Mixed_5d", std::make_shared<InceptionAImpl>(b, "Mixed_5d", 288, 64));
    add("Mixed_6a", std::make_shared<InceptionBImpl>(b, "Mixed_6a", 288));
    add("Mixed_6b", std::make_shared<InceptionCImpl>(b, "Mixed_6b", 768, 128));
    add("Mixed_6c", std::make_shared<InceptionCImpl>(b, "Mixed_6c", 768, 160));
    add("Mixed_6d", std::make_shared<InceptionCImpl>(b, "Mixed_6d", 768, 160));
    add("Mixed_6e", std::make_shared<InceptionCImpl>(b, "Mixed_6e", 768, 192));
    add("Mixed_7a", std::make_shared<InceptionDImpl>(b, "Mixed_7a", 768));
    add("Mixed_7b", std::make_shared<InceptionEImpl>(b, "Mixed_7b", 1280));
    add("Mixed_7c", std::make_shared<InceptionEImpl>(b, "Mixed_7c", 2048));
    bn_ = register_module("Mixed_7c_bn", google_bn(2048));
    fc_ = register_module("fc", b.last("fc", LayerShape::linear(2048, in.classes)));
    set_layers("inception_v3", b.finish("inception_v3"));
    for (const auto& layer : layers()) truncated_normal_(layer->weight, 0.1);
  }
  torch::Tensor forward(torch::Tensor x) override {
    x = stem_convs_[1](stem_convs_[0](stem_(x)));
    x = stem_convs_[3](stem_convs_[2](pool(x)));
    x = pool(x);
    for (const auto& m : modules_) x = m->forward(x);
    x = F::adaptive_avg_pool2d(torch::relu(apply_batch_norm(*bn_, x)), F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
    return fc_(x);
  }
  void describe(GraphDescriber& d) const override {
    std::string x = stem_convs_[1]->describe(d, stem_convs_[0]->describe(d, d.layer(*stem_, d.input())));
    x = stem_convs_[3]->describe(d, stem_convs_[2]->describe(d, d.max_pool("maxpool1", x, 3, 2, 0)));
    x = d.max_pool("maxpool2", x, 3, 2, 0);
    for (const auto& m : modules_) x = m->describe(d, x);
    x = d.global_average_pool_flat("pool", d.relu("relu", d.batch_norm(*bn_, "Mixed_7c_bn", x)));
    d.output(d.layer(*fc_, x));
  }

 private:
  static torch::Tensor pool(const torch::Tensor& x) { return F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2)); }
  QuantLayer stem_{nullptr};
  BnConv stem_convs_[4]{nullptr, nullptr, nullptr, nullptr};
  std::vector<std::shared_ptr<InceptionV3ModuleImpl>> modules_;
  torch::nn::BatchNorm2d bn_{nullptr};
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
  if (name == "googlenet") return std::make_shared<GoogLeNetImpl>(in, p);
  if (name == "inception_v3") return std::make_shared<InceptionV3Impl>(in, p);
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
