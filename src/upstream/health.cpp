#include "zcproxy/health.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <string>
#include <vector>

#include "zcproxy/deadline.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/proxy_protocol.hpp"
#include "zcproxy/socket.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy {
namespace asio = boost::asio;

struct health_checker::state {
  state(asio::io_context& io, std::shared_ptr<upstream> t) : io(io), target(std::move(t)) {}
  struct probe {
    explicit probe(asio::io_context& io) : timer(io), socket(io) {}
    asio::steady_timer timer;
    stream_socket socket;
  };
  asio::io_context& io;
  std::shared_ptr<upstream> target;
  std::vector<std::unique_ptr<probe>> probes;  // one per endpoint
  bool stopped = false;
};

namespace {

// One check: connect, send, read the expected prefix. Returns what went wrong, or "" when the
// endpoint passed.
asio::awaitable<std::string> exchange(stream_socket& s, const address& a,
                                      const upstream_config& u) {
  const health_check_config& hc = u.health_check;
  boost::system::error_code ec;
  std::tie(ec) = co_await s.async_connect(endpoint_of(a), use_tuple);
  if (ec) co_return "connect: " + ec.message();
  std::string request = hc.send;
  if (hc.send_proxy && u.send_proxy != proxy_protocol_version::off)
    request.insert(0, u.send_proxy == proxy_protocol_version::v1
                          ? std::string("PROXY UNKNOWN\r\n")
                          : proxy_protocol::encode_v2_local());
  if (!request.empty()) {
    std::size_t n;
    std::tie(ec, n) = co_await asio::async_write(s, asio::buffer(request), use_tuple);
    if (ec) co_return "send: " + ec.message();
  }
  if (!hc.expect.empty()) {
    std::string got(hc.expect.size(), '\0');
    std::size_t n;
    std::tie(ec, n) = co_await asio::async_read(s, asio::buffer(got), use_tuple);
    if (ec == asio::error::eof) co_return "closed after " + std::to_string(n) + " bytes of reply";
    if (ec) co_return "reply: " + ec.message();
    if (got != hc.expect) co_return "reply does not start with the expected bytes";
  }
  co_return "";
}

}  // namespace

health_checker::health_checker(asio::io_context& io, std::shared_ptr<upstream> target)
    : state_(std::make_shared<state>(io, std::move(target))) {}

health_checker::~health_checker() {
  stop();
}

void health_checker::start() {
  auto st = state_;
  const auto& hc = st->target->config().health_check;
  if (!hc.enabled) return;
  for (std::size_t i = 0; i < st->target->size(); ++i) {
    st->probes.push_back(std::make_unique<state::probe>(st->io));
    auto check_loop = [](std::shared_ptr<state> st, std::size_t i) -> asio::awaitable<void> {
      auto& p = *st->probes[i];
      upstream& up = *st->target;
      const auto& hc = up.config().health_check;
      unsigned passed = 0, failed = 0;  // in a row
      while (!st->stopped) {
        if (up.mode(i) == endpoint_mode::maint) {  // in maintenance: not checked, state kept
          passed = failed = 0;
          p.timer.expires_after(hc.interval);
          co_await p.timer.async_wait(use_tuple);
          continue;
        }
        p.socket = stream_socket(st->io);
        auto r = co_await within(exchange(p.socket, up.at(i), up.config()), p.timer, hc.timeout);
        boost::system::error_code ignored;
        p.socket.close(ignored);
        if (st->stopped) break;
        const std::string problem = r ? *r.done : "timed out";
        if (problem.empty()) {
          failed = 0;
          if (++passed >= hc.rise && up.set_healthy(i, true))
            main_log().info("upstream {} endpoint {} is up ({} checks passed)", up.config().name,
                            up.at(i).to_string(), passed);
        } else {
          passed = 0;
          if (++failed >= hc.fall && up.set_healthy(i, false))
            main_log().warn("upstream {} endpoint {} is down ({} checks failed, last: {})",
                            up.config().name, up.at(i).to_string(), failed, problem);
        }
        p.timer.expires_after(hc.interval);
        co_await p.timer.async_wait(use_tuple);
      }
    };
    asio::co_spawn(st->io, check_loop(st, i), asio::detached);
  }
}

void health_checker::stop() {
  if (!state_ || state_->stopped) return;
  state_->stopped = true;
  for (auto& p : state_->probes) {
    p->timer.cancel();
    boost::system::error_code ignored;
    p->socket.close(ignored);
  }
}

}  // namespace zcproxy
