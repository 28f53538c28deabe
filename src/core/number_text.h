// core: numbers in log lines, reports and error messages, one format for
// each use. Standard library only.
#pragma once

#include <string>

namespace edmips {

/// A number in four significant digits ("%.4g": 0.0003, 1.992, 4.567e+09):
/// lambdas, budgets, costs and hypervolumes wherever a person reads them.
std::string short_number(double value);

/// `value` through one printf conversion (`format` holds exactly one, for a double).
std::string format_number(const char* format, double value);

}  // namespace edmips
