// Why a connection ended, as one type: the access log's `close=` values, the close reasons of
// /metrics and /stats.json, and what each phase of a session returns when the connection closes
// there (Envoy's ConnectionCloseType). A reason has one name, in one table (close_reason_names); a
// reason that does not exist cannot be written.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "zcproxy/enum_names.hpp"

namespace zcproxy {

// In the order of the metrics' counters and of their output; the names are to_string's.
enum class close_reason : std::uint8_t {
  eof,              // both directions ended cleanly
  reset,            // a side reset the connection
  shutdown,         // the proxy closed it (a drain's end, a second signal)
  splice_refused,   // a direction's splice failed in a way copy cannot take over
  connect_failed,   // every endpoint tried refused, or failed, the connect or the first bytes
  connect_timeout,  // every endpoint tried timed out
  no_endpoint,      // none was usable: nothing was tried
  source_failed,    // the upstream's `source:` could not be bound for any endpoint tried
  denied,           // allow/deny
  limit,            // max_connections(_per_ip)
  proxy_header,     // a missing or bad PROXY header
  sni_timeout,      // no complete ClientHello within sni_timeout
  client_hello,     // the client failed or closed before a complete ClientHello
  no_route,         // no route takes the client
  idle_timeout,     // no byte either way within idle_timeout
  max_duration,     // max_connection_duration passed
  queue_full,       // every endpoint at max_connections_per_endpoint and the queue full (or none)
  queue_timeout,    // queued for the upstream's queue.timeout without getting a slot
  fallback,         // the listener's fallback_response was sent; stays last (close_reasons)
};

constexpr std::size_t index_of(close_reason r) {
  return static_cast<std::size_t>(r);
}

// Every reason, in order (index = the enum's value).
inline constexpr auto close_reasons = [] {
  std::array<close_reason, index_of(close_reason::fallback) + 1> all{};
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<close_reason>(i);
  return all;
}();

// The one name table, in the enum's order.
inline constexpr std::array<std::string_view, close_reasons.size()> close_reason_names{
    "eof",
    "reset",
    "shutdown",
    "splice_refused",
    "connect_failed",
    "connect_timeout",
    "no_endpoint",
    "source_failed",
    "denied",
    "limit",
    "proxy_header",
    "sni_timeout",
    "client_hello",
    "no_route",
    "idle_timeout",
    "max_duration",
    "queue_full",
    "queue_timeout",
    "fallback"};
static_assert(all_named(close_reason_names), "a name for every reason");

// Its name: "eof", "no_route", ...
constexpr std::string_view to_string(close_reason r) {
  return name_of(close_reason_names, r);
}
// Whether it refuses a client before any upstream connect.
bool is_refusal(close_reason r);
// The timeout it stands for ("connect", "idle", "max_duration", "sni"), or "" when it is none.
std::string_view timeout_kind(close_reason r);

// A counter (or any value) per close reason, indexed by the reason itself.
template <class T>
struct per_close_reason {
  std::array<T, close_reasons.size()> values{};

  T& operator[](close_reason r) { return values[index_of(r)]; }
  const T& operator[](close_reason r) const { return values[index_of(r)]; }
};

// Why a connection closes, as the phase that closes it found it: the reason, and for the main
// log what happened ("" when there is nothing to tell).
struct closing {
  close_reason reason;
  std::string why;
};

// A phase's end: its value, or why the connection closes. `outcome<>` has no value to give.
template <class T = std::monostate>
class outcome {
 public:
  outcome(T value) : result_(std::move(value)) {}
  outcome(closing c) : result_(std::move(c)) {}
  outcome(close_reason r, std::string why = {}) : result_(closing{r, std::move(why)}) {}

  explicit operator bool() const { return result_.index() == 0; }
  T& operator*() { return std::get<0>(result_); }
  T* operator->() { return &std::get<0>(result_); }
  // Only when there is no value.
  const closing& failure() const { return std::get<1>(result_); }
  close_reason reason() const { return failure().reason; }
  const std::string& why() const { return failure().why; }

 private:
  std::variant<T, closing> result_;
};

// What a phase with nothing to give returns when the connection goes on.
inline constexpr std::monostate go_on{};

}  // namespace zcproxy
