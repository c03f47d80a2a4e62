#include "zcproxy/endpoint_connection.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "zcproxy/connect.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy {
namespace asio = boost::asio;

namespace {

// Where an attempt on `to` binds its socket, for an upstream with `source:`: its fixed address,
// or the client's, transparently. Nullopt, with `why`, when that is no IP of `to`'s family (a
// Unix or unknown client, IPv4 beside IPv6): the backend would not see the address it is
// promised, so no connect is made rather than one from the proxy's own.
std::optional<connect_source> source_for(const source_config& source, const address* client,
                                         const address& to, std::string& why) {
  const bool transparent = source.kind == source_kind::client;
  const address* from = transparent ? client : &source.fixed;
  if (from && !from->local && from->v6 == to.v6) return connect_source{from, transparent};
  why = transparent ? "source client " + (client ? client->to_string() : std::string("unknown"))
                    : "source " + source.fixed.ip;
  why += " is not an address of the endpoint's family";
  return std::nullopt;
}

}  // namespace

asio::awaitable<outcome<>> endpoint_connection::connect(stream_socket& socket,
                                                        endpoint_connect_options options,
                                                        std::function<bool()> stopping) {
  const upstream_config& cfg = up_->config();
  const std::size_t n = up_->size();
  const unsigned attempts = options.attempts           ? options.attempts
                            : cfg.max_connect_attempts ? cfg.max_connect_attempts
                                                       : unsigned(n);
  std::optional<asio::steady_timer> own_timer;
  asio::steady_timer& timer =
      options.timer ? *options.timer : own_timer.emplace(socket.get_executor());
  std::vector<std::uint8_t> candidates(n, 1);  // not yet tried by this connection
  std::optional<std::size_t> reserved = options.reserved;
  // Clients wait for a slot already: this one goes behind them, not to a slot freed meanwhile.
  if (!reserved && up_->limited() && up_->queue()->waiting() != 0)
    co_return close_reason::queue_full;
  unsigned tried = 0, timed_out = 0, source_failed = 0;
  std::string why;
  for (unsigned attempt = 0; attempt < attempts && !stopping(); ++attempt) {
    auto now = upstream::clock::now();
    bool at_limit = false;
    auto i = std::exchange(reserved, std::nullopt);
    if (!i) i = up_->pick(candidates, options.client_hash, now, &at_limit);
    if (!i && attempt > 0) {
      // Every usable endpoint tried once and attempts are left: another round.
      std::fill(candidates.begin(), candidates.end(), 1);
      i = up_->pick(candidates, options.client_hash, now);
    }
    if (!i && attempt == 0 && at_limit) co_return close_reason::queue_full;
    if (!i) break;
    candidates[*i] = 0;
    const address& a = up_->at(*i);
    ++tried;
    connect_source from;
    if (cfg.source.kind != source_kind::none) {  // all an upstream without `source:` pays here
      std::string source_why;
      const auto bound = source_for(cfg.source, options.client, a, source_why);
      if (!bound) {        // not the endpoint's fault: not counted against it
        up_->release(*i);  // its slot, under a limit
        ++source_failed;
        why += (why.empty() ? "" : "; ") + a.to_string() + ": " + source_why;
        continue;
      }
      from = *bound;
    }
    const connect_result r =
        co_await connect_within(socket, endpoint_of(a), options.timeout, timer, from);
    if (r && !stopping()) {
      up_->connect_succeeded(*i);
      up_->started(*i);
      index_ = static_cast<std::uint32_t>(*i);
      active_ = true;
      co_return go_on;
    }
    up_->release(*i);  // its slot, under a limit
    boost::system::error_code ec;
    socket.close(ec);  // connected as the stop came: not used
    if (stopping()) break;
    why += (why.empty() ? "" : "; ") + a.to_string() + ": " +
           (r.timed_out       ? std::string("timed out")
            : r.source_failed ? "binding source: " + r.error.message()
                              : r.error.message());
    timed_out += r.timed_out;
    if (r.source_failed) {  // EPERM, EADDRNOTAVAIL: the proxy's setup, not the endpoint
      ++source_failed;
      continue;
    }
    if (up_->connect_failed(*i, upstream::clock::now()) && options.log_ejection)
      main_log().warn(
          "upstream {} endpoint {}: ejected for {} ms after {} connect failures in a row", cfg.name,
          a.to_string(), cfg.fail_timeout.count(), cfg.max_fails);
  }
  if (reserved) up_->release(*reserved);  // stopped before its attempt
  if (stopping()) co_return close_reason::shutdown;
  const close_reason reason = tried == 0                           ? close_reason::no_endpoint
                              : source_failed == tried             ? close_reason::source_failed
                              : timed_out + source_failed == tried ? close_reason::connect_timeout
                                                                   : close_reason::connect_failed;
  co_return closing{reason, std::move(why)};
}

void endpoint_connection::end() {
  if (!active_) return;
  active_ = false;
  up_->ended(index_);
}

endpoint_connection& endpoint_connection::operator=(endpoint_connection&& other) noexcept {
  if (this == &other) return *this;
  end();
  up_ = other.up_;
  index_ = std::exchange(other.index_, none);
  worker_ = other.worker_;
  active_ = std::exchange(other.active_, false);
  return *this;
}

}  // namespace zcproxy
