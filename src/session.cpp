#include "zcproxy/session.hpp"

#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <string>

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

  tcp::socket client;
  tcp::socket upstream;
  asio::steady_timer timer;
  relay_link link{client, upstream};
  bool shutting_down = false;
};

std::string to_string(const tcp::endpoint& ep) {
  return address{ep.address().to_string(), ep.port(), ep.address().is_v6()}.to_string();
}

// Connect to the upstream's endpoints in round-robin order, each once, each within the connect
// timeout. Returns the endpoint connected to, or nullptr with `why` saying what each attempt met
// and `all_timed_out` whether every one of them ran into the timeout.
asio::awaitable<const address*> connect_upstream(session_state& s, upstream& up, std::string& why,
                                                 bool& all_timed_out) {
  const auto& cfg = up.config();
  const std::size_t n = cfg.endpoints.size();
  const std::size_t first = up.first_endpoint();
  for (std::size_t i = 0; i < n && !s.shutting_down; ++i) {
    const address& a = cfg.endpoints[(first + i) % n].at;
    boost::system::error_code ec;
    tcp::endpoint ep(asio::ip::make_address(a.ip, ec), a.port);
    // Non-blocking from the start: the relay needs it, and Asio's connect then sets no mode of
    // its own (one ioctl less). A failed open is reported by async_connect, which retries it.
    s.upstream.open(ep.protocol(), ec);
    if (!ec) s.upstream.non_blocking(true, ec);
    s.timer.expires_after(cfg.timeouts.connect.value_or(timeouts{}.connect));
    auto r = co_await (s.upstream.async_connect(ep, use_tuple) || s.timer.async_wait(use_tuple));
    if (r.index() == 0 && !std::get<0>(std::get<0>(r)) && !s.shutting_down) co_return &a;
    all_timed_out = all_timed_out && r.index() == 1;
    const std::string err = r.index() == 1 ? "timed out" : std::get<0>(std::get<0>(r)).message();
    main_log().debug("upstream {} endpoint {}: connect failed: {}", cfg.name, a.to_string(), err);
    why += (why.empty() ? "" : "; ") + a.to_string() + ": " + err;
    s.upstream.close(ec);
  }
  co_return nullptr;
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

}  // namespace

asio::awaitable<void> serve(worker& w, bound_listener& l, tcp::socket client) {
  const auto started = std::chrono::steady_clock::now();
  session_state s(std::move(client));
  auto registration = w.session_started(&s);
  struct unregister {
    worker& w;
    std::list<session_handle*>::iterator it;
    ~unregister() { w.session_ended(it); }
  } guard{w, registration};

  boost::system::error_code peer_ec;
  const tcp::endpoint client_peer = s.client.remote_endpoint(peer_ec);
  const std::string client_addr = peer_ec ? "?" : to_string(client_peer);
  std::string why;
  bool all_timed_out = true;
  const address* endpoint = co_await connect_upstream(s, *l.target, why, all_timed_out);
  direction_result up, down;  // client->upstream, upstream->client
  const char* reason;
  if (!endpoint) {
    reason = s.shutting_down ? "shutdown" : all_timed_out ? "timeout" : "connect_failed";
    // The client meets what a direct connect to a dead service would give it, a reset, not a
    // clean end that could pass for an empty reply (an endpoint that accepted and reset at once
    // lands here too).
    // (Not through Asio: its socket destructor turns a linger set through it back off.)
    const linger abort_on_close{1, 0};
    ::setsockopt(s.client.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close,
                 sizeof abort_on_close);
    if (!s.shutting_down)
      main_log().warn("listener {}: client {}: no endpoint of upstream {} reachable: {}",
                      l.config->name, client_addr, l.target->config().name, why);
  } else {
    boost::system::error_code ec;
    for (tcp::socket* sock : {&s.client, &s.upstream}) sock->set_option(tcp::no_delay(true), ec);
    s.client.non_blocking(true, ec);  // splice and read_some/write_some must never block
    const engine_mode engine =
        engine_for(w.relay.engine, client_peer.address(), s.client,
                   asio::ip::make_address(endpoint->ip, ec), s.upstream);
    std::tie(up, down) = co_await (relay(s.client, s.upstream, w.relay, engine, s.link) &&
                                   relay(s.upstream, s.client, w.relay, engine, s.link));
    reason = close_reason(s, up, down);
    w.bytes_spliced.fetch_add(up.spliced + down.spliced, std::memory_order_relaxed);
    w.bytes_copied.fetch_add(up.copied + down.copied, std::memory_order_relaxed);
  }

  if (auto* log = access_log()) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - started)
                        .count();
    log->info(
        "client={} listener={} upstream={} endpoint={} bytes_up={} bytes_down={} duration_ms={} "
        "engine_up={} engine_down={} close={}",
        client_addr, l.config->name, l.target->config().name,
        endpoint ? endpoint->to_string() : "-", up.bytes(), down.bytes(), ms,
        endpoint ? up.engine() : "-", endpoint ? down.engine() : "-", reason);
  }
}

}  // namespace zcproxy
