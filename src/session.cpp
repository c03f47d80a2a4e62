#include "zcproxy/session.hpp"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "zcproxy/log.hpp"
#include "zcproxy/upstream.hpp"

namespace zcproxy {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// The session's sockets and what the worker may do to it. Lives in the coroutine frame.
struct session_state final : session_handle {
  explicit session_state(tcp::socket c)
      : client(std::move(c)), upstream(client.get_executor()), timer(client.get_executor()) {}

  void stop() override {
    shutting_down = true;
    link.stop();  // cancels both sockets: a pending connect or relay wait ends at once
    timer.cancel();
  }

  // Called by the worker's sweep while the relays run (see worker::sweep).
  void check_timeouts(std::chrono::steady_clock::time_point now) override {
    if (!relaying || link.stopped()) return;
    if (limits.max_duration.count() > 0 && now >= relay_started + limits.max_duration)
      expired = "max_duration";
    else if (limits.idle.count() > 0 && now >= link.last_activity() + limits.idle)
      expired = "idle_timeout";
    if (expired) link.stop();
  }

  tcp::socket client;
  tcp::socket upstream;
  asio::steady_timer timer;
  relay_link link{client, upstream};
  bool shutting_down = false;
  bool relaying = false;
  timeouts limits;
  std::chrono::steady_clock::time_point relay_started;
  const char* expired = nullptr;  // the timeout that stopped the relays
};

std::string to_string(const tcp::endpoint& ep) {
  return address{ep.address().to_string(), ep.port(), ep.address().is_v6()}.to_string();
}

// Connect to an endpoint of the upstream, chosen by its policy among the usable ones, the next
// one on failure, up to max_connect_attempts (every endpoint once by default), each attempt
// within the connect timeout. Returns the endpoint's index, or nullopt with `reason` saying why
// (no_endpoint: none was usable, so nothing was tried) and `why` what each attempt met.
asio::awaitable<std::optional<std::size_t>> connect_upstream(session_state& s, upstream& up,
                                                             const timeouts& t,
                                                             std::uint64_t client_hash,
                                                             std::string& why,
                                                             const char*& reason) {
  const std::size_t n = up.size();
  const unsigned attempts =
      up.config().max_connect_attempts ? up.config().max_connect_attempts : unsigned(n);
  std::vector<std::uint8_t> candidates(n, 1);  // not yet tried by this connection
  bool all_timed_out = true;
  reason = "no_endpoint";
  for (unsigned attempt = 0; attempt < attempts && !s.shutting_down; ++attempt) {
    auto now = upstream::clock::now();
    auto i = up.pick(candidates, client_hash, now);
    if (!i && attempt > 0) {
      // Every usable endpoint tried once and attempts are left: another round.
      std::fill(candidates.begin(), candidates.end(), 1);
      i = up.pick(candidates, client_hash, now);
    }
    if (!i) break;
    candidates[*i] = 0;
    const address& a = up.at(*i);
    boost::system::error_code ec;
    tcp::endpoint ep(asio::ip::make_address(a.ip, ec), a.port);
    // Non-blocking from the start: the relay needs it, and Asio's connect then sets no mode of
    // its own (one ioctl less). A failed open is reported by async_connect, which retries it.
    s.upstream.open(ep.protocol(), ec);
    if (!ec) s.upstream.non_blocking(true, ec);
    s.timer.expires_after(t.connect);
    auto r = co_await (s.upstream.async_connect(ep, use_tuple) || s.timer.async_wait(use_tuple));
    if (r.index() == 0 && !std::get<0>(std::get<0>(r)) && !s.shutting_down) {
      up.connect_succeeded(*i);
      co_return i;
    }
    s.upstream.close(ec);
    if (s.shutting_down) break;
    const bool timed_out = r.index() == 1;
    all_timed_out = all_timed_out && timed_out;
    reason = all_timed_out ? "connect_timeout" : "connect_failed";
    const std::string err = timed_out ? "timed out" : std::get<0>(std::get<0>(r)).message();
    why += (why.empty() ? "" : "; ") + a.to_string() + ": " + err;
    if (up.connect_failed(*i, upstream::clock::now()))
      main_log().warn("upstream {} endpoint {}: ejected for {} ms after {} connect failures in a row",
                      up.config().name, a.to_string(), up.config().fail_timeout.count(),
                      up.config().max_fails);
  }
  co_return std::nullopt;
}

const char* close_reason(const session_state& s, const direction_result& up,
                         const direction_result& down) {
  if (s.shutting_down) return "shutdown";
  for (const auto* d : {&up, &down}) {
    if (d->end == direction_end::splice_refused) return "splice_refused";
    if (d->end == direction_end::reset) return "reset";
  }
  return "eof";
}

std::uint64_t client_hash_of(const asio::ip::address& a) {
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    return balancer::hash_client({reinterpret_cast<const char*>(b.data()), b.size()});
  }
  const auto b = a.to_v6().to_bytes();
  return balancer::hash_client({reinterpret_cast<const char*>(b.data()), b.size()});
}

}  // namespace

asio::awaitable<void> serve(worker& w, [[maybe_unused]] std::shared_ptr<const generation> gen,
                            const listener_config& listener, upstream& target,
                            tcp::socket client) {
  // `gen` is held, not used: it keeps `listener` and `target` alive through any reload.
  const auto started = std::chrono::steady_clock::now();
  session_state s(std::move(client));
  auto registration = w.session_started(&s);
  struct unregister {
    worker& w;
    std::list<session_handle*>::iterator it;
    ~unregister() { w.session_ended(it); }
  } guard{w, registration};

  const timeouts t = timeouts_for(listener, target.config());
  boost::system::error_code peer_ec;
  const tcp::endpoint client_peer = s.client.remote_endpoint(peer_ec);
  const std::string client_addr = peer_ec ? "?" : to_string(client_peer);
  const std::uint64_t client_hash = target.config().balance == balance_policy::source_hash
                                        ? client_hash_of(client_peer.address())
                                        : 0;
  std::string why;
  const char* reason = nullptr;
  const std::optional<std::size_t> endpoint =
      co_await connect_upstream(s, target, t, client_hash, why, reason);
  direction_result up, down;  // client->upstream, upstream->client
  if (!endpoint) {
    if (s.shutting_down) reason = "shutdown";
    // The client meets what a direct connect to a dead service would give it, a reset, not a
    // clean end that could pass for an empty reply (an endpoint that accepted and reset at once
    // lands here too).
    // (Not through Asio: its socket destructor turns a linger set through it back off.)
    const linger abort_on_close{1, 0};
    ::setsockopt(s.client.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close,
                 sizeof abort_on_close);
    if (s.shutting_down) {
    } else if (why.empty()) {
      if (target.should_report_all_down(upstream::clock::now()))
        main_log().warn("upstream {}: every endpoint is down or ejected; clients are reset at once",
                        target.config().name);
    } else {
      main_log().warn("listener {}: client {}: no endpoint of upstream {} reachable: {}",
                      listener.name, client_addr, target.config().name, why);
    }
  } else {
    target.started(*endpoint);
    boost::system::error_code ec;
    for (tcp::socket* sock : {&s.client, &s.upstream}) sock->set_option(tcp::no_delay(true), ec);
    s.client.non_blocking(true, ec);  // splice and read_some/write_some must never block
    const address& at = target.at(*endpoint);
    const engine_mode engine = engine_for(w.relay.engine, client_peer.address(), s.client,
                                          asio::ip::make_address(at.ip, ec), s.upstream);
    // The idle and duration timeouts are checked by the worker's sweep (check_timeouts).
    s.limits = t;
    s.relay_started = std::chrono::steady_clock::now();
    s.link.touch();
    s.relaying = true;
    if (t.idle.count() > 0 || t.max_duration.count() > 0) w.need_sweep();
    std::tie(up, down) = co_await (relay(s.client, s.upstream, w.relay, engine, s.link) &&
                                   relay(s.upstream, s.client, w.relay, engine, s.link));
    s.relaying = false;
    reason = s.expired ? s.expired : close_reason(s, up, down);
    w.bytes_spliced.fetch_add(up.spliced + down.spliced, std::memory_order_relaxed);
    w.bytes_copied.fetch_add(up.copied + down.copied, std::memory_order_relaxed);
    target.ended(*endpoint);
  }

  if (auto* log = access_log()) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    log->info(
        "client={} listener={} upstream={} endpoint={} bytes_up={} bytes_down={} duration_ms={} "
        "engine_up={} engine_down={} close={}",
        client_addr, listener.name, target.config().name,
        endpoint ? target.at(*endpoint).to_string() : "-", up.bytes(), down.bytes(), ms,
        endpoint ? up.engine() : "-", endpoint ? down.engine() : "-", reason);
  }
}

}  // namespace zcproxy
