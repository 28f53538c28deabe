// core: stable content hashes used as trial IDs. Standard library only.
#pragma once

#include <string>

namespace edmips {

/// A 12-hex-digit ID derived from SHA-1 (RFC 4122 name-based UUID, Boost.UUID)
/// of `canonical_text`: the same text gives the same ID on every machine.
std::string stable_id(const std::string& canonical_text);

}  // namespace edmips
