#include "zcproxy/session.hpp"

#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "zcproxy/log.hpp"
#include "zcproxy/mirror.hpp"
#include "zcproxy/proxy_protocol.hpp"
#include "zcproxy/sni.hpp"
#include "zcproxy/sys.hpp"
#include "zcproxy/upstream.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

namespace {

// The session's sockets and what the worker may do to it. Lives in the coroutine frame.
struct session_state final : session_handle {
  explicit session_state(stream_socket c)
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

  stream_socket client;
  stream_socket upstream;
  asio::steady_timer timer;
  relay_link link{client, upstream};
  bool shutting_down = false;
  bool relaying = false;
  timeouts limits;
  std::chrono::steady_clock::time_point relay_started;
  const char* expired = nullptr;  // the timeout that stopped the relays
};

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
    const stream_endpoint ep = endpoint_of(a);
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

// Read the PROXY protocol header the client must send first, consuming exactly its bytes: the
// payload behind it stays in the socket for the relay (and splice). Bytes are peeked; once they
// are known to be all header (an incomplete but valid prefix) they are consumed, so the wait for
// more never wakes on bytes already seen.
asio::awaitable<std::optional<proxy_protocol::header>> read_proxy_header(
    session_state& s, std::chrono::milliseconds limit, std::string& why) {
  const int fd = s.client.native_handle();
  std::array<char, proxy_protocol::default_max_size> buf;
  std::size_t have = 0;  // header bytes consumed so far, at the start of buf
  s.timer.expires_after(limit);
  for (;;) {
    const ssize_t n = ::recv(fd, buf.data() + have, buf.size() - have, MSG_PEEK);
    if (n == 0) {
      why = "the client closed before a complete PROXY header";
      co_return std::nullopt;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        why = std::strerror(errno);
        co_return std::nullopt;
      }
      auto r = co_await (s.client.async_wait(stream_socket::wait_read, use_tuple) ||
                         s.timer.async_wait(use_tuple));
      if (s.shutting_down) co_return std::nullopt;
      if (r.index() == 1) {
        why = "no complete PROXY header within proxy_timeout";
        co_return std::nullopt;
      }
      if (auto ec = std::get<0>(std::get<0>(r))) {
        why = ec.message();
        co_return std::nullopt;
      }
      continue;
    }
    const auto parsed =
        proxy_protocol::parse({buf.data(), have + static_cast<std::size_t>(n)});
    if (parsed.status == proxy_protocol::status::invalid) {
      why = parsed.error;
      co_return std::nullopt;
    }
    const bool complete = parsed.status == proxy_protocol::status::complete;
    const std::size_t take = complete ? parsed.header.size - have : static_cast<std::size_t>(n);
    // Those bytes are queued (just peeked): this read takes them at once.
    if (::recv(fd, buf.data() + have, take, 0) != static_cast<ssize_t>(take)) {
      why = "reading the PROXY header failed";
      co_return std::nullopt;
    }
    have += take;
    if (complete) {
      s.timer.cancel();
      co_return parsed.header;
    }
  }
}

// Read the client's first bytes until they hold a whole ClientHello or prove not to be one, within
// `limit`. They are consumed (waiting for more bytes while peeking would wake at once on those
// already seen), so the caller sends `bytes` upstream first; the rest stays for the relay.
// False, with `why`, when the client closed, failed or ran out of time first.
asio::awaitable<bool> read_client_hello(session_state& s, std::chrono::milliseconds limit,
                                        std::string& bytes, sni::client_hello& hello,
                                        const char*& reason, std::string& why) {
  // A ClientHello over the cap is `invalid` from its declared length; the extra room holds the
  // record header and whatever follows the hello in the same read.
  bytes.resize(sni::default_max_hello_bytes + 1024);
  std::size_t have = 0;
  s.timer.expires_after(limit);
  for (;;) {
    auto r = co_await (s.client.async_read_some(asio::buffer(bytes.data() + have,
                                                             bytes.size() - have),
                                                use_tuple) ||
                       s.timer.async_wait(use_tuple));
    if (s.shutting_down) {
      reason = "shutdown";
      co_return false;
    }
    if (r.index() == 1) {
      reason = "sni_timeout";
      why = "no complete ClientHello within sni_timeout (" + std::to_string(have) + " bytes)";
      co_return false;
    }
    auto [ec, n] = std::get<0>(r);
    if (ec) {
      reason = "client_hello";
      why = ec == asio::error::eof ? "the client closed before a complete ClientHello"
                                   : ec.message();
      co_return false;
    }
    have += n;
    hello = sni::parse_client_hello({bytes.data(), have});
    if (hello.status == sni::parse_status::incomplete && have == bytes.size()) {
      hello.status = sni::parse_status::invalid;
      hello.reason = "ClientHello larger than " + std::to_string(have) + " bytes";
    }
    if (hello.status != sni::parse_status::incomplete) {
      s.timer.cancel();
      bytes.resize(have);
      co_return true;
    }
  }
}

// The upstream a routed listener sends this client to, from what read_client_hello found;
// nullptr (with `why`) when no route takes it.
upstream* route_client(const generation& gen, const listener_config& l,
                       const sni::client_hello& hello, std::string& why) {
  const std::string* name = nullptr;
  if (hello.status == sni::parse_status::complete) {
    if (auto i = sni::route(l.routes.patterns, hello.server_name))
      name = &l.routes.upstreams[*i];
    else if (!l.routes.fallback.empty())
      name = &l.routes.fallback;
    else
      why = hello.server_name.empty() ? "a ClientHello without a server name, and no default route"
                                      : "no route for server name " + hello.server_name +
                                            ", and no default route";
  } else {
    const std::string what = hello.status == sni::parse_status::not_tls
                                 ? std::string("not TLS")
                                 : "a malformed ClientHello (" + hello.reason + ")";
    if (l.non_tls_to_default)
      name = &l.routes.fallback;
    else
      why = what + ", and non_tls is close";
  }
  return name ? gen.find(*name) : nullptr;
}

// A listener's fallback_response, once no endpoint could be reached: the body's bytes go to the
// client by sendfile(2) from its sealed memfd (no copy through user space), or by a plain write
// of the same bytes where sendfile is refused, all within `limit`. Then the end of the stream,
// and a lingering close: the client's unread request would otherwise turn the close into a
// reset, which can destroy the response before the client reads it. Returns the bytes sent.
asio::awaitable<std::size_t> send_fallback(session_state& s, const fallback_body& body,
                                           std::chrono::milliseconds limit) {
  const int out = s.client.native_handle();
  off_t offset = 0;
  auto left = [&] { return body.size - static_cast<std::size_t>(offset); };
  s.timer.expires_after(limit);
  while (left() > 0) {
    const ssize_t n = sys::sendfile(out, body.fd, &offset, left());
    if (n > 0) continue;  // sendfile advanced offset; a short write is normal
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The client's socket buffer is full: wait for room.
      auto r = co_await (s.client.async_wait(stream_socket::wait_write, use_tuple) ||
                         s.timer.async_wait(use_tuple));
      if (r.index() == 1 || std::get<0>(std::get<0>(r)) || s.shutting_down) co_return offset;
      continue;
    }
    if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
      // This kernel or socket cannot sendfile: the same bytes from user space.
      std::string rest(left(), '\0');
      if (::pread(body.fd, rest.data(), rest.size(), offset) != static_cast<ssize_t>(rest.size()))
        co_return offset;
      auto r = co_await (asio::async_write(s.client, asio::buffer(rest), use_tuple) ||
                         s.timer.async_wait(use_tuple));
      if (r.index() == 1 || std::get<0>(std::get<0>(r))) co_return offset;
      offset = static_cast<off_t>(body.size);
      break;
    }
    co_return offset;  // EPIPE, ECONNRESET (the client is gone); 0: the body cannot shrink
  }
  boost::system::error_code ec;
  s.client.shutdown(stream_socket::shutdown_send, ec);
  // Lingering close: read and drop what the client sends until it closes, for up to a second.
  s.timer.expires_after(std::min(limit, std::chrono::milliseconds(1000)));
  std::array<char, 4096> sink;
  for (std::size_t drained = 0; drained < (1u << 20);) {
    auto r = co_await (s.client.async_read_some(asio::buffer(sink), use_tuple) ||
                       s.timer.async_wait(use_tuple));
    if (r.index() == 1 || std::get<0>(std::get<0>(r))) break;
    drained += std::get<1>(std::get<0>(r));
  }
  co_return offset;
}

// Whether this connection is in a mirror's sampled share.
bool sampled(double share) {
  if (share >= 1) return true;
  if (share <= 0) return false;
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0, 1)(rng) < share;
}

// How long a mirror may take, once its connection has ended, to send what is staged.
constexpr std::chrono::seconds mirror_finish_limit{10};

// The client is refused (access control, limits, a bad PROXY header, no endpoint): it is reset,
// as a direct connect to a dead or closed service would be, not closed cleanly, which could pass
// for an empty reply. (Not through Asio: its socket destructor turns a linger set through it
// back off.)
void reset_on_close(stream_socket& s) {
  const linger abort_on_close{1, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
}

// Whether allow/deny let in a client from `peer` (`ip_key` its address bytes). A Unix socket's
// client is refused by an allow list (it cannot be shown to be in it); one whose address is not
// known at all, by any rule (it cannot be shown to pass them).
bool permitted(const acl& access, const std::optional<address>& peer, const std::string& ip_key) {
  if (!peer) return access.permits_all();
  if (peer->local) return access.allow().empty();
  return access.permits({reinterpret_cast<const unsigned char*>(ip_key.data()), ip_key.size()});
}

// Whether a main-log line about a client closed for `reason` may be written (log_limiter: a flood
// of bad clients writes a few lines, then counts); first says how many such lines were left out.
bool may_log(listener_state& counts, const listener_config& l, std::string_view reason,
             spdlog::level::level_enum level) {
  std::uint64_t left_out = 0;
  const bool write =
      counts.client_lines.admit(close_reason_index(reason), log_limiter::clock::now(), left_out);
  if (left_out)
    main_log().log(level, "listener {}: {} more lines about clients closed with {} were left out",
                   l.name, left_out, reason);
  return write;
}

}  // namespace

asio::awaitable<void> serve(worker& w, std::shared_ptr<const generation> gen, listener_view l,
                            stream_socket client, std::optional<address> peer) {
  // `gen` keeps what `l` points to alive through any reload.
  const listener_config& listener = *l.config;
  upstream* routed = l.target;  // nullptr for a listener with routes, until the route is known
  const acl& access = *l.access;
  listener_state& counts = *l.state;
  const auto started = std::chrono::steady_clock::now();
  session_state s(std::move(client));
  auto registration = w.session_started(&s);
  struct unregister {
    worker& w;
    std::list<session_handle*>::iterator it;
    ~unregister() { w.session_ended(it); }
  } guard{w, registration};
  listener_metrics& metrics = counts.metrics;
  metrics.accepted.fetch_add(1, std::memory_order_relaxed);
  metrics.active.fetch_add(1, std::memory_order_relaxed);

  boost::system::error_code ec;
  s.client.non_blocking(true, ec);  // splice, read_some/write_some and peeks must never block
  std::optional<address> client_peer = peer;  // a PROXY header's source replaces it
  std::optional<address> client_local;  // the address the client connected to, when known
  std::string client_addr = client_peer ? client_peer->to_string() : "?";
  std::string why;
  const char* reason = nullptr;

  if (listener.accept_proxy) {
    if (auto h = co_await read_proxy_header(s, listener.proxy_timeout, why)) {
      if (h->has_ip_addresses()) {
        client_peer = h->source;
        client_addr = h->source.to_string();
        client_local = h->destination;
      }
    } else {
      reason = s.shutting_down ? "shutdown" : "proxy_header";
      if (!s.shutting_down && may_log(counts, listener, reason, spdlog::level::warn))
        main_log().warn("listener {}: client {}: refused: PROXY header: {}", listener.name,
                        client_addr, why);
    }
  }

  // Empty for a Unix socket's client: all such clients count as one for max_connections_per_ip.
  const std::string ip_key = client_peer ? ip_bytes(*client_peer) : std::string();
  bool admitted = false;
  if (!reason) {
    if (!permitted(access, client_peer, ip_key)) {
      reason = "denied";
      if (may_log(counts, listener, reason, spdlog::level::info))
        main_log().info("listener {}: client {}: refused by allow/deny", listener.name,
                        client_addr);
    } else if (!counts.admit(ip_key, listener.max_connections, listener.max_connections_per_ip)) {
      reason = "limit";
      if (may_log(counts, listener, reason, spdlog::level::info))
        main_log().info("listener {}: client {}: refused: max_connections{} reached", listener.name,
                        client_addr, listener.max_connections_per_ip ? "(_per_ip)" : "");
    } else {
      admitted = true;
    }
  }

  std::string first_bytes;   // the ClientHello of a routed listener's client, sent upstream first
  std::string server_name;   // from it
  if (!reason && !routed) {
    sni::client_hello hello;
    if (co_await read_client_hello(s, listener.sni_timeout, first_bytes, hello, reason, why)) {
      server_name = hello.server_name;
      routed = route_client(*gen, listener, hello, why);
      if (!routed) reason = "no_route";
    }
    if (reason && !s.shutting_down && may_log(counts, listener, reason, spdlog::level::info))
      main_log().info("listener {}: client {}: closed: {}", listener.name, client_addr, why);
    why.clear();
  }

  // A client that has already reset sent nothing that could be delivered: no upstream connect
  // is made for it (a flood of them would otherwise drive the backend's connects).
  if (!reason && peer_gone(s.client)) reason = "reset";

  std::optional<std::size_t> endpoint;
  const timeouts t = routed ? timeouts_for(listener, routed->config()) : timeouts{};
  if (!reason) {
    upstream& target = *routed;
    const std::uint64_t client_hash = target.config().balance == balance_policy::source_hash
                                          ? balancer::hash_client(ip_key)
                                          : 0;
    endpoint = co_await connect_upstream(s, target, t, client_hash, why, reason);
    if (!endpoint) {
      if (s.shutting_down) {
        reason = "shutdown";
      } else if (why.empty()) {
        if (target.should_report_all_down(upstream::clock::now()))
          main_log().warn(
              "upstream {}: every endpoint is down or ejected; clients are reset at once",
              target.config().name);
      } else if (may_log(counts, listener, reason, spdlog::level::warn)) {
        main_log().warn("listener {}: client {}: no endpoint of upstream {} reachable: {}",
                        listener.name, client_addr, target.config().name, why);
      }
    }
  }

  // The mirror starts once the primary is connected (a client the primary cannot serve is not
  // mirrored), connects on its own, and stages what the client sends until it is connected:
  // nothing here waits for the shadow.
  std::shared_ptr<mirror> shadow;
  upstream* shadow_upstream = nullptr;
  if (endpoint && !listener.mirror_upstream.empty() && sampled(listener.mirror_sample) &&
      (shadow_upstream = gen->find(listener.mirror_upstream))) {
    shadow = std::make_shared<mirror>(
        s.client.get_executor(), std::max(listener.mirror_max_lag, gen->cfg.relay.buffer_size),
        w.relay.pipe_size);
    asio::co_spawn(s.client.get_executor(),
                   run_mirror(shadow, std::shared_ptr<upstream>(gen, shadow_upstream),
                              std::shared_ptr<listener_metrics>(gen, &metrics),
                              timeouts_for(listener, shadow_upstream->config()).connect),
                   asio::detached);
  }

  if (endpoint && (routed->config().send_proxy != proxy_protocol_version::off ||
                   !first_bytes.empty())) {
    // The client's addresses go first, then the bytes read from it (its ClientHello), in one
    // write.
    std::string header;
    if (routed->config().send_proxy != proxy_protocol_version::off) {
      if (!client_local) client_local = local_of(s.client);
      // An address unknown (a socket that cannot say) is sent as an unknown one.
      address unknown;
      unknown.local = true;
      const address& source = client_peer ? *client_peer : unknown;
      const address& destination = client_local ? *client_local : unknown;
      header = routed->config().send_proxy == proxy_protocol_version::v1
                   ? proxy_protocol::encode_v1(source, destination)
                   : proxy_protocol::encode_v2(source, destination);
    }
    const std::array<asio::const_buffer, 2> out{asio::buffer(header), asio::buffer(first_bytes)};
    auto [write_ec, n] = co_await asio::async_write(s.upstream, out, use_tuple);
    if (write_ec) {
      if (may_log(counts, listener, "connect_failed", spdlog::level::warn))
        main_log().warn("listener {}: client {}: sending the first bytes to {} failed: {}",
                        listener.name, client_addr, routed->at(*endpoint).to_string(),
                        write_ec.message());
      reason = "connect_failed";
      endpoint.reset();
    } else {
      add_single_writer(metrics.traffic[w.index].up, first_bytes.size());
      add_single_writer(metrics.traffic[w.index].copied, first_bytes.size());
      if (shadow) shadow->feed(first_bytes.data(), first_bytes.size());  // the client's, not ours
    }
  }

  direction_result up, down;  // client->upstream, upstream->client
  std::size_t fallback_sent = 0;
  if (!endpoint && listener.fallback && reason &&
      (std::strcmp(reason, "no_endpoint") == 0 || std::strcmp(reason, "connect_failed") == 0 ||
       std::strcmp(reason, "connect_timeout") == 0)) {
    // Within the idle timeout: a client too slow to take the response in that time gets less.
    fallback_sent = co_await send_fallback(
        s, *listener.fallback, t.idle.count() > 0 ? t.idle : std::chrono::milliseconds(600000));
    reason = s.shutting_down ? "shutdown" : "fallback";
    add_single_writer(metrics.traffic[w.index].down, fallback_sent);
  } else if (!endpoint) {
    reset_on_close(s.client);
  } else {
    upstream& target = *routed;
    target.started(*endpoint);
    const address& at = target.at(*endpoint);
    const address client_end = peer.value_or(address{});
    if (!client_end.local) s.client.set_option(asio::ip::tcp::no_delay(true), ec);
    if (!at.local) s.upstream.set_option(asio::ip::tcp::no_delay(true), ec);
    const engine_mode engine = engine_for(w.relay.engine, client_end, s.client, at, s.upstream);
    // The idle and duration timeouts are checked by the worker's sweep (check_timeouts).
    s.limits = t;
    s.relay_started = std::chrono::steady_clock::now();
    s.link.touch();
    s.relaying = true;
    if (t.idle.count() > 0 || t.max_duration.count() > 0) w.need_sweep();
    std::optional<token_bucket> upload, download;  // rate_limit, per connection
    if (listener.upload_rate) upload.emplace(listener.upload_rate);
    if (listener.download_rate) download.emplace(listener.download_rate);
    std::tie(up, down) = co_await (
        relay(s.client, s.upstream, w.relay, engine, s.link,
              {upload ? &*upload : nullptr, {&metrics.traffic[w.index], true}, shadow.get()}) &&
        relay(s.upstream, s.client, w.relay, engine, s.link,
              {download ? &*download : nullptr, {&metrics.traffic[w.index], false}}));
    s.relaying = false;
    reason = s.expired ? s.expired : close_reason(s, up, down);
    w.bytes_spliced.fetch_add(up.spliced + down.spliced, std::memory_order_relaxed);
    w.bytes_copied.fetch_add(up.copied + down.copied, std::memory_order_relaxed);
    target.ended(*endpoint);
    target.count_bytes(*endpoint, up.bytes() + first_bytes.size(), down.bytes());
  }
  // The shadow gets the rest and its end on its own time: this connection closes now. A server
  // that is closing connections (a drain's end, a second signal) ends its mirrors too.
  if (shadow) {
    if (s.shutting_down) shadow->stop("slow");
    shadow->end_of_stream(mirror_finish_limit);
  }
  if (admitted) counts.release(ip_key, listener.max_connections_per_ip != 0);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  metrics.ended(reason, seconds, up.fallback, down.fallback);
  metrics.active.fetch_sub(1, std::memory_order_relaxed);

  if (access_log_enabled()) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
    log_access({.client = client_addr,
                .listener = listener.name,
                .sni = server_name,
                .upstream = routed ? routed->config().name : "",
                .endpoint = endpoint ? routed->at(*endpoint).to_string() : "",
                .bytes_up = up.bytes() + (endpoint ? first_bytes.size() : 0),
                .bytes_down = down.bytes() + fallback_sent,
                .duration_ms = static_cast<std::uint64_t>(ms.count()),
                .engine_up = endpoint ? up.engine() : "",
                .engine_down = endpoint ? down.engine() : "",
                .close = reason,
                .start = std::chrono::system_clock::now() - ms});
  }
}

}  // namespace zcproxy
