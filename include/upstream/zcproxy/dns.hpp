// The vocabulary of endpoints given by DNS name: a name and how it is resolved, how a resolution
// ended, what one gave, and what is counted per name. Types only (the resolver is resolver.hpp),
// for the layers that pass them on.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "zcproxy/address.hpp"
#include "zcproxy/config.hpp"
#include "zcproxy/enum_names.hpp"

namespace zcproxy {

// A name and how to resolve it; two upstreams that resolve a name alike share its resolution.
struct dns_name {
  std::string host;
  resolve_config how;
  bool operator==(const dns_name&) const = default;
};

// How a DNS resolution ended.
enum class dns_result : unsigned char { ok, nxdomain, no_data, servfail, refused, timeout, error };
inline constexpr std::array<std::string_view, 7> dns_result_names{
    "ok", "nxdomain", "no_data", "servfail", "refused", "timeout", "error"};
constexpr std::string_view to_string(dns_result r) {
  return name_of(dns_result_names, r);
}

// A name an upstream's endpoints are given by.
struct dns_stats {
  std::string name;
  std::string family;         // any, v4 or v6
  std::size_t addresses = 0;  // in use now (the last good answer's)
  dns_result last = dns_result::ok;
  bool resolved = false;  // an answer with addresses has come at least once
  std::array<std::uint64_t, dns_result_names.size()> results{};  // resolutions, by result
};

struct dns_answer {
  dns_result result = dns_result::error;
  std::vector<address> addresses;  // ip and v6 set, port 0; sorted, no duplicates
  std::chrono::seconds ttl{0};     // the smallest of the records'
  std::string detail;              // c-ares's words for a failure
};

}  // namespace zcproxy
