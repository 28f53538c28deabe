#include <catch2/catch.hpp>

#include "core/error.h"
#include "core/json_reader.h"
#include "core/stable_id.h"
#include "test_support.h"

#include <filesystem>
#include <fstream>

using namespace edmips;

TEST_CASE("an unknown key is rejected with its path and the near spelling", "[core][json]") {
  const auto j = nlohmann::json::parse(R"({"search": {"epoch": 3}})");
  JsonObjectReader root(j, "", "sweep.json");
  auto search = root.object("search");
  search.int_value("epochs", 1, 10, 1);
  CHECK_THROWS_WITH(search.reject_unknown_keys(),
                    "sweep.json: /search/epoch: unknown key; did you mean \"epochs\"?");
}

TEST_CASE("a wrong type names the file, the path, what was expected and what was found", "[core][json]") {
  const auto j = nlohmann::json::parse(R"({"bits": [2, "three"]})");
  JsonObjectReader root(j, "", "t.json");
  CHECK_THROWS_WITH(root.int_list("bits", 1, 8),
                    "t.json: /bits/1: expected an integer in [1, 8], found the string \"three\"");
}

TEST_CASE("an out-of-range number is rejected with the allowed range", "[core][json]") {
  const auto j = nlohmann::json::parse(R"({"epochs": 0})");
  JsonObjectReader root(j, "/trial", "t.json");
  CHECK_THROWS_AS(root.int_value("epochs", 1, 100), ConfigError);
  CHECK_THROWS_WITH(root.int_value("epochs", 1, 100), Catch::Contains("/trial/epochs") && Catch::Contains("[1, 100]"));
}

TEST_CASE("a JSON syntax error names the file", "[core][json]") {
  CHECK_THROWS_WITH(parse_json_text("{\"a\": }", "broken.json"), Catch::StartsWith("broken.json: not valid JSON"));
}

TEST_CASE("stable IDs depend only on the text", "[core][hash]") {
  CHECK(stable_id("abc") == stable_id("abc"));
  CHECK(stable_id("abc") != stable_id("abd"));
  CHECK(stable_id("abc").size() == 12);
  // Pinned: the same text must give the same ID on every machine and release.
  CHECK(stable_id("edmips") == stable_id(std::string("edm") + "ips"));
}

TEST_CASE("a key given twice in one object is an error naming its JSON path", "[core][json]") {
  CHECK_THROWS_WITH(parse_json_text(R"({"search": {"epochs": 2, "lr": 0.1, "epochs": 3}})", "s.json"),
                    "s.json: /search/epochs: key given twice in one object (remove one)");
  CHECK_THROWS_WITH(parse_json_text(R"({"a": [1, {"b": 1, "b": 2}]})", "s.json"),
                    Catch::Contains("/a/1/b: key given twice"));
  // The same key in sibling objects is fine.
  CHECK_NOTHROW(parse_json_text(R"({"a": {"b": 1}, "c": {"b": 2}, "d": [{"b": 1}, {"b": 2}]})", "s.json"));
}

TEST_CASE("deeply nested JSON and numbers out of range are input errors, not crashes", "[core][json]") {
  const std::string deep = std::string(150000, '[') + std::string(150000, ']');
  CHECK_THROWS_AS(parse_json_text(deep, "deep.json"), ConfigError);
  CHECK_THROWS_WITH(parse_json_text(deep, "deep.json"), Catch::Contains("deep.json") && Catch::Contains("deeper than"));
  CHECK_NOTHROW(parse_json_text(std::string(60, '[') + std::string(60, ']'), "fine.json"));
  CHECK_THROWS_WITH(parse_json_text(R"({"seed": 1e999})", "big.json"), Catch::Contains("big.json"));
  CHECK_THROWS_AS(parse_json_text(R"({"seed": 1e999})", "big.json"), ConfigError);
}

TEST_CASE("every byte of JSON text is seen: a NUL and what follows it are an error, not ignored",
          "[core][json][hardening]") {
  const std::string text = std::string(R"({"seed": 1})") + std::string(1, '\0') + "{ garbage";
  CHECK_THROWS_AS(parse_json_text(text, "nul.json"), ConfigError);
  CHECK_THROWS_WITH(parse_json_text(text, "nul.json"), Catch::Contains("nul.json") && Catch::Contains("byte 12") &&
                                                           Catch::Contains("NUL"));
}

TEST_CASE("config files over the size limit, and endless ones, are refused", "[core][json]") {
  edmips::testing::TempDir dir;
  const auto huge = dir / "huge.json";
  { std::ofstream touch(huge); }
  std::filesystem::resize_file(huge, kMaxJsonFileBytes + 1);  // sparse: reads as zeros
  CHECK_THROWS_WITH(load_json_file(huge.string()), Catch::Contains(huge.string()) && Catch::Contains("MiB"));
  CHECK_THROWS_AS(load_json_file(huge.string()), ConfigError);
  // A device is refused before a byte is read (it would never end).
  CHECK_THROWS_WITH(load_json_file("/dev/zero"), Catch::Contains("/dev/zero") && Catch::Contains("character device"));
  CHECK_THROWS_AS(load_json_file("/dev/zero"), ConfigError);
}
