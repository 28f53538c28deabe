#include "core/stable_id.h"

#include <algorithm>

#include <boost/uuid/name_generator_sha1.hpp>
#include <boost/uuid/nil_generator.hpp>
#include <boost/uuid/uuid_io.hpp>

namespace edmips {

std::string stable_id(const std::string& canonical_text) {
  // A fixed namespace so IDs never depend on anything but the text.
  boost::uuids::name_generator_sha1 generator(boost::uuids::nil_uuid());
  std::string hex = boost::uuids::to_string(generator(canonical_text));
  hex.erase(std::remove(hex.begin(), hex.end(), '-'), hex.end());
  return hex.substr(0, 12);
}

}  // namespace edmips
