// An enum's names: one table of std::string_view in the enum's order (index = the enumerator's
// value), declared beside the enum as `X_names`, and the two look-ups every such enum shares:
// `to_string(X)` is name_of(X_names, x), and a parse of text into X (a config word, an admin
// argument) is parse_name<X>(X_names, text). A name is written once, so what is printed and what
// is parsed cannot drift apart.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace zcproxy {

template <class E, std::size_t N>
constexpr std::string_view name_of(const std::array<std::string_view, N>& names, E e) {
  return names[static_cast<std::size_t>(e)];
}

// Every name given: a table sized by its enum's count (not by its initializers) checks with
// static_assert(all_named(X_names)) that no name was left out.
template <std::size_t N>
constexpr bool all_named(const std::array<std::string_view, N>& names) {
  for (auto name : names)
    if (name.empty()) return false;
  return true;
}

// The enumerator named `text`, or none when no name matches (exactly: names are case-sensitive).
template <class E, std::size_t N>
constexpr std::optional<E> parse_name(const std::array<std::string_view, N>& names,
                                      std::string_view text) {
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == text) return static_cast<E>(i);
  return std::nullopt;
}

}  // namespace zcproxy
