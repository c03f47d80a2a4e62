// Numbers as a config writes them: sizes ("64KiB"), durations ("500ms"), plain digits.
#include <algorithm>
#include <charconv>
#include <limits>

#include "checker.hpp"

namespace zcproxy {
namespace detail {
namespace {

// Splits "123 unit" into the number and the unit; spaces between them are tolerated.
std::optional<std::pair<std::uint64_t, std::string_view>> split_number(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  auto number = parse_digits(text.substr(0, digits));
  if (!number) return std::nullopt;
  auto unit = text.substr(digits);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return std::pair{*number, unit};
}

}  // namespace

std::string format_duration(std::chrono::milliseconds d) {
  static constexpr std::pair<std::string_view, std::chrono::milliseconds::rep> units[] = {
      {"h", 60 * 60 * 1000}, {"m", 60 * 1000}, {"s", 1000}};
  for (auto [name, factor] : units)
    if (d.count() != 0 && d.count() % factor == 0)
      return std::to_string(d.count() / factor) + std::string(name);
  return std::to_string(d.count()) + "ms";
}

}  // namespace detail

std::optional<std::size_t> parse_size(std::string_view text) {
  auto parts = detail::split_number(text);
  if (!parts) return std::nullopt;
  auto [number, unit] = *parts;
  static constexpr std::pair<std::string_view, std::uint64_t> units[] = {
      {"", 1},
      {"B", 1},
      {"K", 1ull << 10},
      {"KiB", 1ull << 10},
      {"M", 1ull << 20},
      {"MiB", 1ull << 20},
      {"G", 1ull << 30},
      {"GiB", 1ull << 30},
      {"KB", 1000},
      {"kB", 1000},
      {"MB", 1000 * 1000},
      {"GB", 1000 * 1000 * 1000},
  };
  for (auto [name, factor] : units) {
    if (unit != name) continue;
    if (number > std::numeric_limits<std::size_t>::max() / factor) return std::nullopt;
    return static_cast<std::size_t>(number * factor);
  }
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto parts = detail::split_number(text);
  if (!parts) return std::nullopt;
  auto [number, unit] = *parts;
  static constexpr std::pair<std::string_view, std::uint64_t> units[] = {
      {"ms", 1},
      {"s", 1000},
      {"m", 60 * 1000},
      {"h", 60 * 60 * 1000},
  };
  using rep = std::chrono::milliseconds::rep;
  for (auto [name, factor] : units) {
    if (unit != name) continue;
    if (number > static_cast<std::uint64_t>(std::numeric_limits<rep>::max()) / factor)
      return std::nullopt;
    return std::chrono::milliseconds(static_cast<rep>(number * factor));
  }
  return std::nullopt;
}

}  // namespace zcproxy
