// A session's life, phase by phase, as nginx's stream proxy runs one: identify (the PROXY
// header) -> admit (allow/deny, limits) -> preface and route (a routed listener's ClientHello)
// -> connect -> relay -> finish. The PROXY header comes before admission because allow/deny and
// the per-address limit judge the address it carries. A phase returns its value or why the
// connection closes; the first that closes it ends the way there, and a client no upstream
// serves gets the fallback response or a reset.
#include "session.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <tuple>

#include "admission.hpp"
#include "connect_policy.hpp"
#include "routing.hpp"
#include "session_state.hpp"
#include "zcproxy/endpoint_connection.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/mirror.hpp"
#include "zcproxy/upstream.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy {
namespace asio = boost::asio;
using detail::session_state;

namespace {

// How long a mirror may take, once its connection has ended, to send what is staged.
constexpr std::chrono::seconds mirror_finish_limit{10};

// The limit for a fallback response when the idle timeout is 0 (no limit): it still gets one, so
// a client that never reads cannot hold its session forever; 10 minutes, the idle timeout's
// default.
constexpr std::chrono::milliseconds fallback_limit_without_idle = std::chrono::minutes(10);

// Milliseconds since `t`, for the access log.
std::uint64_t ms_since(std::chrono::steady_clock::time_point t) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t)
          .count());
}

// One client connection, its phases as member functions, in the order serve() calls them. On the
// heap, on its worker's thread: serve()'s coroutine owns it until the relays start, then the
// relays do, and the last to end deletes it (an idle connection pins no coroutine frame). `gen`
// keeps what the listener's references point to alive through any reload.
struct session final : relay_owner, session_handle {
  // What only the phases before the relays need: kept in serve()'s frame, which ends as the
  // relays start, so an open connection does not hold it.
  struct setup_state {
    asio::steady_timer timer;                  // session_state::timer
    std::optional<address> peer;               // as accept(2) gave it
    std::optional<address> client_peer;        // `peer`, or a PROXY header's source
    std::optional<address> client_local = {};  // the address the client connected to, if known
    std::string first_bytes = {};  // a routed listener's client's ClientHello, sent upstream first
    timeouts t = {};               // the routed upstream's, once connecting
  };

  session(worker& w, std::shared_ptr<const generation> gen, listener_view l, stream_socket client,
          setup_state& setup);
  ~session() { w.session_ended(this); }
  session(const session&) = delete;
  session& operator=(const session&) = delete;

  asio::awaitable<outcome<>> open_upstream();
  asio::awaitable<outcome<>> identify();
  outcome<> admit();
  asio::awaitable<outcome<upstream*>> preface_and_route();
  asio::awaitable<outcome<>> connect();
  void start_mirror();
  asio::awaitable<outcome<>> send_first_bytes();
  void start_relays();
  void direction_ended(relay_direction& d) override;
  asio::awaitable<close_reason> refuse(close_reason reason);
  void finish(close_reason reason);
  access_record record(access_event event) const;
  std::chrono::milliseconds log_interim();
  // session_handle: the worker's stop and sweep.
  void stop() override { s.stop(); }
  void check_timeouts(std::chrono::steady_clock::time_point now) override {
    if (s.check_timeouts(now))
      s.next_interim = session_state::next_due(s.next_interim, log_interim(), now);
  }
  bool may_log(close_reason reason, spdlog::level::level_enum level);

  worker& w;
  const std::shared_ptr<const generation> gen;
  const listener_config& listener;
  const acl& access;
  listener_state& counts;
  listener_metrics& metrics;
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  session_state s;
  setup_state* setup;       // until the relays start
  std::string client_addr;  // client_peer for the logs
  // client_peer's address bytes; empty for a Unix socket's client: all such clients count as one
  // for max_connections_per_ip.
  std::string ip_key;
  bool admitted = false;             // counted by the listener's limits (released at the end)
  upstream* routed;                  // nullptr for a listener with routes, until the route is known
  std::string server_name;           // from the ClientHello
  std::size_t first_bytes_sent = 0;  // of setup->first_bytes
  endpoint_connection endpoint;      // to routed's, once connected
  std::shared_ptr<mirror> shadow;
  std::unique_ptr<token_bucket> upload, download;      // rate_limit, per connection
  relay_direction up{s.client, s.upstream, s.link};    // client->upstream
  relay_direction down{s.upstream, s.client, s.link};  // upstream->client
  int relays_running = 0;
  std::size_t fallback_sent = 0;
};

session::session(worker& w, std::shared_ptr<const generation> gen, listener_view l,
                 stream_socket client, setup_state& setup)
    : w(w),
      gen(std::move(gen)),
      listener(*l.config),
      access(*l.access),
      counts(*l.state),
      metrics(l.state->metrics),
      s(std::move(client)),
      setup(&setup),
      client_addr(setup.peer ? setup.peer->to_string() : "?"),
      routed(l.target) {
  s.timer = &setup.timer;
  w.session_started(this);
  metrics.accepted.fetch_add(1, std::memory_order_relaxed);
  metrics.active.fetch_add(1, std::memory_order_relaxed);
  // Splice, read_some/write_some and peeks must never block. A listener's sockets are so from
  // accept4 (adopt_new_socket): no ioctl here.
  boost::system::error_code ec;
  if (!s.client.non_blocking()) s.client.non_blocking(true, ec);
}

// Every phase up to an upstream ready for the relay.
asio::awaitable<outcome<>> session::open_upstream() {
  if (listener.accept_proxy)
    if (auto r = co_await identify(); !r) co_return r;
  if (auto r = admit(); !r) co_return r;
  if (!routed) {
    auto target = co_await preface_and_route();
    if (!target) co_return target.failure();
    routed = *target;
  }
  // A client that has already reset sent nothing that could be delivered: no upstream connect
  // is made for it (a flood of them would otherwise drive the backend's connects).
  if (peer_gone(s.client)) co_return close_reason::reset;
  if (auto connected = co_await connect(); !connected) co_return connected;
  start_mirror();
  co_return co_await send_first_bytes();
}

// The PROXY header: its source and destination, when it carries IP addresses, replace the
// socket's.
asio::awaitable<outcome<>> session::identify() {
  auto h = co_await detail::read_proxy_header(s, listener.proxy_timeout);
  if (!h) {
    if (!s.shutting_down && may_log(h.reason(), spdlog::level::warn))
      main_log().warn("listener {}: client {}: refused: PROXY header: {}", listener.name,
                      client_addr, h.why());
    co_return h.failure();
  }
  if (h->has_ip_addresses()) {
    setup->client_peer = h->source;
    client_addr = h->source.to_string();
    setup->client_local = h->destination;
  }
  co_return go_on;
}

// allow/deny, then max_connections(_per_ip).
outcome<> session::admit() {
  const std::optional<address>& client_peer = setup->client_peer;
  ip_key = client_peer ? ip_bytes(*client_peer) : std::string();
  if (!detail::permitted(access, client_peer, ip_key)) {
    if (may_log(close_reason::denied, spdlog::level::info))
      main_log().info("listener {}: client {}: refused by allow/deny", listener.name, client_addr);
    return close_reason::denied;
  }
  if (!counts.admit(ip_key, listener.max_connections, listener.max_connections_per_ip)) {
    if (may_log(close_reason::limit, spdlog::level::info))
      main_log().info("listener {}: client {}: refused: max_connections{} reached", listener.name,
                      client_addr, listener.max_connections_per_ip ? "(_per_ip)" : "");
    return close_reason::limit;
  }
  admitted = true;
  return go_on;
}

// A routed listener's client: its ClientHello (kept to send upstream first), then the upstream a
// route gives its server name.
asio::awaitable<outcome<upstream*>> session::preface_and_route() {
  auto preface = co_await detail::read_client_hello(s, listener.sni_timeout);
  if (preface) {
    setup->first_bytes = std::move(preface->bytes);
    server_name = preface->hello.server_name;
  }
  auto target = preface ? detail::route_client(*gen, listener, preface->hello)
                        : outcome<upstream*>(preface.failure());
  if (!target && !s.shutting_down && may_log(target.reason(), spdlog::level::info))
    main_log().info("listener {}: client {}: closed: {}", listener.name, client_addr, target.why());
  co_return target;
}

// An endpoint of the routed upstream, chosen by its policy (the client's address for
// source_hash), the next one on failure, each attempt within the connect timeout and stopped by
// the session's stop (see endpoint_connection::connect).
asio::awaitable<outcome<>> session::connect() {
  upstream& target = *routed;
  setup->t = timeouts_for(listener, target.config());
  const std::uint64_t client_hash = detail::client_hash_for(target.config().balance, ip_key);
  endpoint = endpoint_connection(target, w.index);
  // log.on_connect: the clock is read only when the line is asked for.
  const bool log_connect = gen->cfg.log.on_connect;
  const auto began = log_connect ? std::chrono::steady_clock::now() : decltype(started){};
  endpoint_connect_options options{.timeout = setup->t.connect,
                                   .client_hash = client_hash,
                                   .timer = s.timer,
                                   .client = setup->client_peer ? &*setup->client_peer : nullptr};
  auto stopping = [this] { return s.shutting_down; };
  auto connected = co_await endpoint.connect(s.upstream, options, stopping);
  if (!connected && connected.reason() == close_reason::queue_full) {
    // Every endpoint at its limit, or clients queued before this one: the queue phase.
    // (No co_await inside ?: : GCC 12 miscompiles it.)
    auto slot = co_await detail::wait_for_slot(s, target, client_hash);
    if (!slot) co_return slot.failure();
    options.reserved = *slot;
    connected = co_await endpoint.connect(s.upstream, options, stopping);
  }
  if (!connected) endpoint.reset();  // none connected: the access log names none
  if (connected && log_connect && access_log_enabled()) {
    access_record line = record(access_event::connect);
    line.connect_ms = ms_since(began);
    log_access(line);
  }
  switch (detail::report_for(connected)) {
    case detail::connect_report::none:
      break;
    case detail::connect_report::all_down:
      if (target.should_report_all_down(upstream::clock::now()))
        main_log().warn("upstream {}: every endpoint is down or ejected; clients are reset at once",
                        target.config().name);
      break;
    case detail::connect_report::unreachable:
      if (may_log(connected.reason(), spdlog::level::warn))
        main_log().warn("listener {}: client {}: no endpoint of upstream {} reachable: {}",
                        listener.name, client_addr, target.config().name, connected.why());
      break;
  }
  co_return connected;
}

// The mirror starts once the primary is connected (a client the primary cannot serve is not
// mirrored), connects on its own, and stages what the client sends until it is connected:
// nothing here waits for the shadow.
void session::start_mirror() {
  upstream* shadow_upstream = nullptr;
  if (listener.mirror_upstream.empty() || !mirror_sampled(listener.mirror_sample) ||
      !(shadow_upstream = gen->find(listener.mirror_upstream)))
    return;
  // The lag is at least a copy round's worth: a round feeds the mirror all it filled at once (up
  // to buffer_size bytes), and a lag below that would stop even a shadow that keeps up as slow.
  shadow = std::make_shared<mirror>(s.client.get_executor(),
                                    std::max(listener.mirror_max_lag, gen->cfg.relay.buffer_size),
                                    w.relay.pipe_size);
  asio::co_spawn(s.client.get_executor(),
                 run_mirror(shadow, std::shared_ptr<upstream>(gen, shadow_upstream),
                            std::shared_ptr<listener_metrics>(gen, &metrics),
                            timeouts_for(listener, shadow_upstream->config()).connect, w.index,
                            setup->client_peer),
                 asio::detached);
}

// The client's addresses (send_proxy) go first, then the bytes read from it (its ClientHello),
// in one write.
asio::awaitable<outcome<>> session::send_first_bytes() {
  const proxy_protocol_version send_proxy = routed->config().send_proxy;
  const std::string& first_bytes = setup->first_bytes;
  std::optional<address>& client_local = setup->client_local;
  const std::optional<address>& client_peer = setup->client_peer;
  if (send_proxy == proxy_protocol_version::off && first_bytes.empty()) co_return go_on;
  std::string header;
  if (send_proxy != proxy_protocol_version::off) {
    if (!client_local) client_local = local_of(s.client);
    // An address unknown (a socket that cannot say) is sent as an unknown one.
    address unknown;
    unknown.local = true;
    const address& source = client_peer ? *client_peer : unknown;
    const address& destination = client_local ? *client_local : unknown;
    header = send_proxy == proxy_protocol_version::v1
                 ? proxy_protocol::encode_v1(source, destination)
                 : proxy_protocol::encode_v2(source, destination);
  }
  const std::array<asio::const_buffer, 2> out{asio::buffer(header), asio::buffer(first_bytes)};
  auto [write_ec, n] = co_await asio::async_write(s.upstream, out, use_tuple);
  if (write_ec) {
    if (may_log(close_reason::connect_failed, spdlog::level::warn))
      main_log().warn("listener {}: client {}: sending the first bytes to {} failed: {}",
                      listener.name, client_addr, endpoint.at().to_string(), write_ec.message());
    endpoint.reset();  // not used: ended here, and not in the access log
    co_return closing{close_reason::connect_failed, write_ec.message()};
  }
  first_bytes_sent = first_bytes.size();
  add_single_writer(metrics.traffic[w.index].up, first_bytes.size());
  add_single_writer(metrics.traffic[w.index].copied, first_bytes.size());
  add_single_writer(endpoint.meter().up, first_bytes.size());
  if (shadow) shadow->feed(first_bytes.data(), first_bytes.size());  // the client's, not ours
  co_return go_on;
}

// Both directions at once; the last to end finishes the session and deletes it.
void session::start_relays() {
  boost::system::error_code ec;
  const address& at = endpoint.at();
  const timeouts& t = setup->t;
  const address client_end = setup->peer.value_or(address{});
  const engine_mode engine = engine_for(w.relay.engine, client_end, s.client, at, s.upstream);
  // The client's socket has TCP_NODELAY and the read hint from its listener's (open_tcp_acceptor);
  // the hint serves the copy engine's fills only.
  if (!at.local) {
    s.upstream.set_option(asio::ip::tcp::no_delay(true), ec);
    if (engine == engine_mode::copy) set_read_hint(s.upstream.native_handle());
  }
  // The idle and duration timeouts are checked by the worker's sweep (check_timeouts).
  s.limits = t;
  s.relay_started = std::chrono::steady_clock::now();
  s.link.touch();
  s.relaying = true;
  // log.interval's interim lines ride on the same sweep.
  if (const auto every = gen->cfg.log.interval; every.count() > 0)
    s.next_interim = s.relay_started + every;
  if (t.idle.count() > 0 || t.max_duration.count() > 0 || s.next_interim != session_state::never)
    w.need_sweep();
  if (listener.upload_rate) upload = std::make_unique<token_bucket>(listener.upload_rate);
  if (listener.download_rate) download = std::make_unique<token_bucket>(listener.download_rate);
  endpoint_traffic_slot& meter = endpoint.meter();
  setup = nullptr;  // serve()'s frame ends as this returns
  s.timer = nullptr;
  relays_running = 2;
  down.start(w.relay, engine, {download.get(), {&metrics.traffic[w.index], &meter, false}}, *this);
  // Last: when both directions end at once, this deletes the session.
  up.start(w.relay, engine, {upload.get(), {&metrics.traffic[w.index], &meter, true}, shadow.get()},
           *this);
}

void session::direction_ended(relay_direction&) {
  if (--relays_running > 0) return;
  s.relaying = false;
  const close_reason reason = s.expired ? *s.expired : s.relay_end(up.result(), down.result());
  w.bytes_spliced.fetch_add(up.result().spliced + down.result().spliced, std::memory_order_relaxed);
  w.bytes_copied.fetch_add(up.result().copied + down.result().copied, std::memory_order_relaxed);
  endpoint.end();
  finish(reason);
  delete this;
}

// A client no upstream serves. When no endpoint could be reached, the listener's
// fallback_response, within the idle timeout (a client too slow to take the response in that
// time gets less); otherwise a reset.
asio::awaitable<close_reason> session::refuse(close_reason reason) {
  if (detail::refusal_for(reason, listener.fallback != nullptr) == detail::refusal::reset) {
    detail::reset_on_close(s.client);
    co_return reason;
  }
  fallback_sent = co_await detail::send_fallback(
      s, *listener.fallback,
      setup->t.idle.count() > 0 ? setup->t.idle : fallback_limit_without_idle);
  add_single_writer(metrics.traffic[w.index].down, fallback_sent);
  co_return s.shutting_down ? close_reason::shutdown : close_reason::fallback;
}

// Counters, the access-log line, and the listener's limits released.
void session::finish(close_reason reason) {
  // The shadow gets the rest and its end on its own time: this connection closes now. A server
  // that is closing connections (a drain's end, a second signal) ends its mirrors too.
  if (shadow) {
    if (s.shutting_down) shadow->stop(mirror_result::slow);
    shadow->end_of_stream(mirror_finish_limit);
  }
  if (admitted) counts.release(ip_key, listener.max_connections_per_ip != 0);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  metrics.ended(reason, seconds, up.result().copy_switch, down.result().copy_switch);
  metrics.active.fetch_sub(1, std::memory_order_relaxed);
  if (!access_log_enabled()) return;
  access_record line = record(access_event::close);
  line.close = reason;
  log_access(line);
}

// The access-log line's fields as they stand now: the bytes so far while the relays run.
access_record session::record(access_event event) const {
  const std::uint64_t ms = ms_since(started);
  return {.client = client_addr,
          .listener = listener.name,
          .sni = server_name,
          .upstream = routed ? routed->config().name : "",
          .endpoint = endpoint.index() ? endpoint.at().to_string() : "",
          .bytes_up = up.result().bytes() + first_bytes_sent,
          .bytes_down = down.result().bytes() + fallback_sent,
          .duration_ms = ms,
          .engine_up = endpoint.index() ? up.result().engine() : "",
          .engine_down = endpoint.index() ? down.result().engine() : "",
          .start = std::chrono::system_clock::now() - std::chrono::milliseconds(ms),
          .event = event};
}

std::chrono::milliseconds session::log_interim() {
  if (access_log_enabled()) log_access(record(access_event::interim));
  return gen->cfg.log.interval;
}

// Whether a main-log line about a client closed for `reason` may be written (log_limiter: a flood
// of bad clients writes a few lines, then counts); first says how many such lines were left out.
bool session::may_log(close_reason reason, spdlog::level::level_enum level) {
  std::uint64_t left_out = 0;
  const bool write =
      counts.client_lines.admit(index_of(reason), log_limiter::clock::now(), left_out);
  if (left_out)
    main_log().log(level, "listener {}: {} more lines about clients closed with {} were left out",
                   listener.name, left_out, to_string(reason));
  return write;
}

}  // namespace

asio::awaitable<void> serve(worker& w, std::shared_ptr<const generation> gen, listener_view l,
                            stream_socket client, std::optional<address> peer) {
  session::setup_state setup{asio::steady_timer(client.get_executor()), peer, peer};
  auto connection = std::make_unique<session>(w, std::move(gen), l, std::move(client), setup);
  const outcome<> ready = co_await connection->open_upstream();
  if (ready) {
    connection.release()->start_relays();  // the relays own it from here
    co_return;
  }
  const close_reason reason = co_await connection->refuse(ready.reason());
  connection->finish(reason);
}

}  // namespace zcproxy
