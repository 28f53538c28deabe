#include "bench/step_benchmark.h"

#include <chrono>
#include <iomanip>
#include <ostream>
#include <torch/torch.h>

#include "models/network.h"

namespace edmips {
namespace {

using Clock = std::chrono::steady_clock;

struct Form {
  std::string name;
  Network net;
  std::unique_ptr<torch::optim::SGD> weights, arch;
  double penalty = 0;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

std::vector<StepTiming> run_step_benchmark(const StepBenchmarkOptions& o) {
  torch::set_num_threads(o.threads);
  torch::manual_seed(0);
  const ModelInput input{o.channels, o.height, o.width, o.classes};
  NetworkPrecision fp;
  NetworkPrecision search;
  search.mode = PrecisionMode::search;
  search.weight_candidates = o.weight_bits;
  search.activation_candidates = o.activation_bits;
  NetworkPrecision fixed;
  fixed.mode = PrecisionMode::fixed;
  fixed.fixed_bits = {{"", o.weight_bits[o.weight_bits.size() / 2], o.activation_bits[o.activation_bits.size() / 2]}};

  std::vector<Form> forms;
  auto add = [&](const std::string& name, const NetworkPrecision& p, bool naive) {
    Form f;
    f.name = name;
    f.net = make_network(o.model, input, p);
    f.net->set_naive_search(naive);
    f.weights = std::make_unique<torch::optim::SGD>(f.net->weight_parameters(),
                                                    torch::optim::SGDOptions(0.01).momentum(0.9).weight_decay(1e-4));
    if (p.mode == PrecisionMode::search) {
      f.arch = std::make_unique<torch::optim::SGD>(f.net->arch_parameters(),
                                                   torch::optim::SGDOptions(0.01).momentum(0.9));
      f.penalty = 1e-3;
    }
    forms.push_back(std::move(f));
  };
  add("float", fp, false);
  add("search (composite)", search, false);
  add("fixed (derived)", fixed, false);
  if (o.naive) add("search (naive |W|x|A|)", search, true);

  const auto data = torch::randn({o.batch * 4, o.channels, o.height, o.width});
  const auto labels = torch::randint(o.classes, {o.batch * 4}, torch::kLong);
  std::vector<std::vector<double>> times(forms.size()), assembly(forms.size());
  for (int step = 0; step < o.warmup + o.steps; ++step) {
    for (size_t i = 0; i < forms.size(); ++i) {  // interleaved, so drift hits every form alike
      auto& f = forms[i];
      const auto t0 = Clock::now();
      const auto index = torch::randint(o.batch * 4, {o.batch}, torch::kLong);
      const auto x = data.index_select(0, index);
      const auto y = labels.index_select(0, index);
      const auto t1 = Clock::now();
      auto loss = torch::nn::functional::cross_entropy(f.net->forward(x), y);
      if (f.penalty > 0) loss = loss + f.penalty * f.net->complexity_loss(ComplexityNormaliser::first_layer);
      f.weights->zero_grad();
      if (f.arch) f.arch->zero_grad();
      loss.backward();
      f.weights->step();
      if (f.arch) f.arch->step();
      (void)loss.item<float>();
      const auto t2 = Clock::now();
      if (step >= o.warmup) {
        times[i].push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
        assembly[i].push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      }
    }
  }
  std::vector<StepTiming> rows;
  for (size_t i = 0; i < forms.size(); ++i) {
    StepTiming t;
    t.form = forms[i].name;
    t.median_ms = median(times[i]);
    t.batch_assembly_ms = median(assembly[i]);
    rows.push_back(t);
  }
  for (auto& r : rows) r.ratio_to_float = r.median_ms / rows[0].median_ms;
  return rows;
}

void print_step_table(std::ostream& out, const StepBenchmarkOptions& o, const std::vector<StepTiming>& rows) {
  out << "model " << o.model << ", batch " << o.batch << ", input " << o.channels << "x" << o.height << "x"
      << o.width << ", threads " << o.threads << ", median of " << o.steps << " steps\n\n";
  out << "| form | ms/step | x float | batch assembly ms |\n|---|---:|---:|---:|\n";
  out << std::fixed;
  for (const auto& r : rows) {
    out << "| " << r.form << " | " << std::setprecision(1) << r.median_ms << " | " << std::setprecision(2)
        << r.ratio_to_float << " | " << std::setprecision(2) << r.batch_assembly_ms << " |\n";
  }
}

}  // namespace edmips
