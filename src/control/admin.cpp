#include "zcproxy/admin.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <chrono>
#include <deque>
#include <set>
#include <stdexcept>

#include "admin_routes.hpp"
#include "metrics.hpp"
#include "zcproxy/acl.hpp"
#include "zcproxy/control_api.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/socket.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto request_timeout = 30s;  // to send a whole request, and between requests
constexpr std::size_t history_seconds = 60;

// Total bytes relayed so far, both directions, over the snapshot's listeners.
std::pair<std::uint64_t, std::uint64_t> bytes_moved(const proxy_stats& s) {
  std::uint64_t up = 0, down = 0;
  for (const auto& l : s.listeners) {
    up += l.bytes_up;
    down += l.bytes_down;
  }
  return {up, down};
}

}  // namespace

std::string admin_paths(const admin_config& cfg) {
  return listed_paths(admin_table(), cfg);
}

// Shared with its coroutines (each holds it as its first parameter): close() ends them, and the
// last to end frees it, whenever the control loop runs them.
struct admin_server::impl {
  impl(asio::io_context& io, control_api& api, const admin_config& cfg)
      : io(io), api(api), cfg(cfg), access(cfg.allow, cfg.deny), acceptor(io), sampler(io) {}

  asio::io_context& io;
  control_api& api;
  const admin_config cfg;
  const acl access;
  tcp::acceptor acceptor;
  asio::steady_timer sampler;
  std::set<beast::tcp_stream*> clients;  // open connections, closed by close()

  // The last minute of throughput, one sample a second (touched on the control loop only).
  std::deque<throughput_sample> history;
  std::uint64_t last_up = 0, last_down = 0;
  std::chrono::steady_clock::time_point last_time;
  admin_context context{api, cfg, history};

  void close() {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    sampler.cancel();
    for (auto* c : clients) c->close();
  }

  asio::awaitable<void> sample_loop(std::shared_ptr<impl>) {
    bool first = true;
    for (;;) {
      const proxy_stats s = api.snapshot();
      const auto now = std::chrono::steady_clock::now();
      const auto [up, down] = bytes_moved(s);
      if (!first) {
        const double dt = std::chrono::duration<double>(now - last_time).count();
        // A reload that drops a listener drops its counts: never a negative rate.
        auto rate = [dt](std::uint64_t now_bytes, std::uint64_t before) {
          return now_bytes >= before && dt > 0 ? static_cast<double>(now_bytes - before) / dt : 0;
        };
        history.push_back({s.now, rate(up, last_up), rate(down, last_down)});
        if (history.size() > history_seconds) history.pop_front();
      }
      first = false;
      last_up = up;
      last_down = down;
      last_time = now;
      sampler.expires_after(1s);
      auto [ec] = co_await sampler.async_wait(use_tuple);
      if (ec) co_return;
    }
  }

  asio::awaitable<void> serve(std::shared_ptr<impl>, tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    clients.insert(&stream);
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(16 * 1024);
      parser.body_limit(64 * 1024);
      stream.expires_after(request_timeout);
      auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple);
      if (ec) {
        if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
            ec != asio::error::operation_aborted)
          main_log().debug("admin: bad request: {}", ec.message());
        break;
      }
      auto res = respond(admin_table(), context, parser.get());
      const bool keep = res.keep_alive();
      auto [write_ec, m] = co_await http::async_write(stream, res, use_tuple);
      if (write_ec || !keep) break;
    }
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    clients.erase(&stream);
  }

  asio::awaitable<void> accept_loop(std::shared_ptr<impl> self) {
    for (;;) {
      tcp::endpoint peer;  // from accept(2): a client that reset since has no getpeername()
      auto [ec, socket] = co_await acceptor.async_accept(peer, use_tuple);
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) {  // out of fds, say: wait a little, never spin
        asio::steady_timer pause(io, 100ms);
        co_await pause.async_wait(use_tuple);
        continue;
      }
      const auto ip = peer.address();
      const std::string bytes = ip_bytes({ip.to_string(), peer.port(), ip.is_v6()});
      if (!access.permits({reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()})) {
        main_log().info("admin: client {} refused by allow/deny", ip.to_string());
        continue;  // closed as `socket` goes
      }
      asio::co_spawn(io, serve(self, std::move(socket)), asio::detached);
    }
  }
};

admin_server::admin_server(asio::io_context& io, control_api& api, const admin_config& cfg)
    : impl_(std::make_shared<impl>(io, api, cfg)) {
  auto& m = *impl_;
  try {
    const tcp::endpoint ep(asio::ip::make_address(cfg.bind.ip), cfg.bind.port);
    m.acceptor.open(ep.protocol());
    m.acceptor.set_option(tcp::acceptor::reuse_address(true));
    m.acceptor.bind(ep);
    m.acceptor.listen();
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("admin: cannot listen on " + cfg.bind.to_string() + ": " +
                             e.code().message());
  }
  const auto ip = asio::ip::make_address(cfg.bind.ip);
  if (!ip.is_loopback() && cfg.allow.empty())
    main_log().warn(
        "admin: listening on {}, which is not a loopback address, with no allow list: anyone who "
        "can reach it sees the proxy's stats{}",
        bound().to_string(), cfg.reload ? " and can make it reload" : "");
  if (!cfg.token.empty() && !ip.is_loopback())
    main_log().warn("admin: run-time changes are refused on {}, which is not a loopback address",
                    bound().to_string());
  main_log().info("admin on {}: {}", bound().to_string(), admin_paths(cfg));
  asio::co_spawn(io, m.accept_loop(impl_), asio::detached);
  asio::co_spawn(io, m.sample_loop(impl_), asio::detached);
}

admin_server::~admin_server() {
  impl_->close();
}

address admin_server::bound() const {
  boost::system::error_code ec;
  const auto ep = impl_->acceptor.local_endpoint(ec);
  address a = impl_->cfg.bind;
  if (!ec) a.port = ep.port();
  return a;
}

}  // namespace zcproxy
