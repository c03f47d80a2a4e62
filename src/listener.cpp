#include "zcproxy/listener.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <stdexcept>

#include "zcproxy/log.hpp"
#include "zcproxy/session.hpp"

namespace zcproxy {
namespace asio = boost::asio;

tcp::acceptor open_acceptor(asio::io_context& io, const address& at) {
  tcp::endpoint ep(asio::ip::make_address(at.ip), at.port);
  tcp::acceptor acc(io, ep.protocol());
  acc.set_option(tcp::acceptor::reuse_address(true));
  // One acceptor per worker thread on the same address: the kernel balances accepts among them.
  acc.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
  acc.bind(ep);
  acc.listen(asio::socket_base::max_listen_connections);
  return acc;
}

void ensure_address_free(const address& at) {
  asio::io_context io(1);
  tcp::endpoint ep(asio::ip::make_address(at.ip), at.port);
  tcp::acceptor probe(io, ep.protocol());
  probe.set_option(tcp::acceptor::reuse_address(true));  // TIME_WAIT leftovers are no conflict
  probe.bind(ep);
}

std::vector<tcp::acceptor> open_listener(const listener_config& lc,
                                         const std::vector<asio::io_context*>& ios,
                                         address& resolved) {
  std::vector<tcp::acceptor> out;
  resolved = lc.bind;
  try {
    // SO_REUSEPORT would let this bind share a port another process of this user already
    // listens on, splitting its traffic: make sure the address is free first.
    if (lc.bind.port != 0) ensure_address_free(lc.bind);
    for (auto* io : ios) {
      out.push_back(open_acceptor(*io, resolved));
      resolved.port = out.front().local_endpoint().port();
    }
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("listener " + lc.name + ": cannot listen on " +
                             resolved.to_string() + ": " + e.code().message());
  }
  return out;
}

void start_session(worker& w, bound_listener& l, tcp::socket client) {
  asio::co_spawn(w.io,
                 serve(w, l.gen, listener_view{l.config, l.target, l.access, l.state},
                       std::move(client)),
                 [](std::exception_ptr e) {
                   if (!e) return;
                   try {
                     std::rethrow_exception(e);
                   } catch (const std::exception& x) {
                     // A bug: sessions report errors as values.
                     main_log().error("session failed: {}", x.what());
                   }
                 });
}

void close_listener(worker& w, bound_listener& l) {
  // Connections the kernel has completed but nobody accepted yet would be reset by the close:
  // take them first, and serve them with the settings they came in under.
  boost::system::error_code ec;
  l.acceptor.non_blocking(true, ec);
  while (!ec && !w.draining) {
    tcp::socket client(w.io);
    l.acceptor.accept(client, ec);
    if (!ec) start_session(w, l, std::move(client));
  }
  l.acceptor.close(ec);
  l.backoff.cancel();
}

asio::awaitable<void> accept_loop(worker& w, bound_listener& l) {
  using namespace std::chrono_literals;
  constexpr auto min_backoff = 10ms, max_backoff = 1000ms;
  auto backoff = min_backoff;
  while (l.acceptor.is_open()) {
    auto [ec, client] = co_await l.acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    // Closed for shutdown: an accept that completed just before is dropped, not served past the
    // drain. Closed by a reload that removed the listener: it is served like any other.
    if (w.draining || ec == asio::error::operation_aborted) break;
    if (!ec) {
      backoff = min_backoff;
      start_session(w, l, std::move(client));
      continue;
    }
    if (ec == asio::error::connection_aborted) continue;  // the client left before we took it
    // EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection waits in the backlog; retrying at once
    // would spin, so wait and try again, longer each time while it persists.
    main_log().warn("listener {}: accept failed: {}; retrying in {} ms", l.config->name,
                    ec.message(), backoff.count());
    l.backoff.expires_after(backoff);
    co_await l.backoff.async_wait(asio::as_tuple(asio::use_awaitable));
    backoff = std::min(backoff * 2, max_backoff);
  }
}

}  // namespace zcproxy
