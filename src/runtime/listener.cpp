#include "listener.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "edge_wait.hpp"
#include "session.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy {
namespace asio = boost::asio;

namespace {

stream_acceptor open_tcp_acceptor(asio::io_context& io, const address& at) {
  const stream_endpoint ep = endpoint_of(at);
  stream_acceptor acc(io, ep.protocol());
  acc.set_option(stream_acceptor::reuse_address(true));
  // One acceptor per worker thread on the same address: the kernel balances accepts among them.
  acc.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
  // Every accepted socket inherits TCP_NODELAY and the read hint (TCP_INQ, for the relay's drained
  // reads) from the listening one: no setsockopt per client.
  acc.set_option(asio::ip::tcp::no_delay(true));
  set_read_hint(acc.native_handle());
  acc.bind(ep);
  acc.listen(asio::socket_base::max_listen_connections);
  return acc;
}

// A socket file at `path` from an earlier run that is gone (a connect is refused) is stale and
// removed; a live one means the address is in use; anything else there is not ours to remove.
void clear_stale_socket(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return;  // nothing there
  if (!S_ISSOCK(st.st_mode))
    throw boost::system::system_error(make_error_code(boost::system::errc::file_exists),
                                      "a file that is not a socket is in the way");
  asio::io_context io(1);
  asio::local::stream_protocol::socket probe(io);
  boost::system::error_code ec;
  probe.connect(asio::local::stream_protocol::endpoint(path), ec);
  if (!ec) throw boost::system::system_error(make_error_code(boost::system::errc::address_in_use));
  if (ec == asio::error::connection_refused) ::unlink(path.c_str());
}

}  // namespace

void ensure_address_free(const address& at) {
  if (at.local) {
    clear_stale_socket(at.path);
    return;
  }
  asio::io_context io(1);
  const stream_endpoint ep = endpoint_of(at);
  stream_acceptor probe(io, ep.protocol());
  probe.set_option(stream_acceptor::reuse_address(true));  // TIME_WAIT leftovers are no conflict
  probe.bind(ep);
}

std::vector<stream_acceptor> open_listener(const listener_config& lc,
                                           const std::vector<asio::io_context*>& ios,
                                           address& resolved) {
  std::vector<stream_acceptor> out;
  resolved = lc.bind;
  try {
    // SO_REUSEPORT would let this bind share a port another process of this user already
    // listens on, splitting its traffic: make sure the address is free first.
    if (lc.bind.local || lc.bind.port != 0) ensure_address_free(lc.bind);
    if (lc.bind.local) {
      // A Unix socket cannot be bound once per worker: every worker waits on the same listening
      // socket (a dup of it, on its own io_context) and whichever is woken first accepts.
      const stream_endpoint ep = endpoint_of(lc.bind);
      out.emplace_back(*ios.front(), ep.protocol());
      out.front().bind(ep);
      out.front().listen(asio::socket_base::max_listen_connections);
      for (std::size_t i = 1; i < ios.size(); ++i) {
        const int fd = ::dup(out.front().native_handle());
        if (fd < 0)
          throw boost::system::system_error(errno, boost::system::system_category(), "dup");
        out.emplace_back(*ios[i], ep.protocol(), fd);
      }
      return out;
    }
    for (auto* io : ios) {
      out.push_back(open_tcp_acceptor(*io, resolved));
      resolved.port = address_of(out.front().local_endpoint())->port;
    }
  } catch (const boost::system::system_error& e) {
    if (lc.bind.local && !out.empty()) ::unlink(lc.bind.path.c_str());  // ours, half made
    throw std::runtime_error("listener " + lc.name + ": cannot listen on " + resolved.to_string() +
                             ": " + e.code().message());
  }
  return out;
}

namespace {

// What is wrong with `fd` as a socket for `lc`; empty when nothing is.
std::string unfit_socket(int fd, const listener_config& lc) {
  int type = 0, listening = 0, family = 0;
  socklen_t len = sizeof type;
  // ENOTSOCK (or EBADF): not a socket at all.
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return std::strerror(errno);
  len = sizeof listening;
  ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
  len = sizeof family;
  ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len);
  const int wanted = endpoint_of(lc.bind).protocol().family();
  if (type != SOCK_STREAM) return "not a stream socket";
  if (!listening) return "not listening";
  if (family != wanted)
    return wanted == AF_UNIX ? "not a Unix socket"
                             : "not of the address family of " + lc.bind.to_string();
  return {};
}

}  // namespace

std::vector<std::vector<stream_acceptor>> adopt_listener(const listener_config& lc,
                                                         std::vector<unique_fd> fds,
                                                         const std::vector<asio::io_context*>& ios,
                                                         address& resolved) {
  for (const auto& f : fds)
    if (const std::string why = unfit_socket(f.get(), lc); !why.empty())
      throw std::runtime_error("listener " + lc.name + ": the socket passed for it (fd " +
                               std::to_string(f.get()) + ") is unfit: " + why);
  // As a listener of our own (open_tcp_acceptor): accepted sockets inherit TCP_NODELAY and TCP_INQ.
  const int on = 1;
  if (!lc.bind.local)
    for (const auto& f : fds) {
      ::setsockopt(f.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
      set_read_hint(f.get());
    }
  const auto protocol = endpoint_of(lc.bind).protocol();
  std::vector<int> raw;  // for the dups: the acceptors own the fds
  for (const auto& f : fds) raw.push_back(f.get());
  std::vector<std::vector<stream_acceptor>> out(ios.size());
  const std::size_t n = std::max(fds.size(), ios.size());
  for (std::size_t i = 0; i < n; ++i) {
    // Each socket has a queue of its own (SO_REUSEPORT): one nobody accepts from strands its
    // connections, so every one goes to some worker; a worker left over shares one (a dup).
    unique_fd f(i < fds.size() ? fds[i].release()
                               : ::fcntl(raw[i % raw.size()], F_DUPFD_CLOEXEC, 0));
    if (f.get() < 0)
      throw std::runtime_error("listener " + lc.name + ": dup: " + std::strerror(errno));
    out[i % ios.size()].emplace_back(*ios[i % ios.size()], protocol, f.get());
    f.release();  // the acceptor owns it now
  }
  resolved = address_of(out.front().front().local_endpoint()).value_or(lc.bind);
  return out;
}

void remove_socket_file(const address& at) {
  if (at.local) ::unlink(at.path.c_str());
}

void start_session(worker& w, bound_listener& l, stream_socket client,
                   const stream_endpoint& peer) {
  asio::co_spawn(w.io,
                 serve(w, l.gen, listener_view{l.config, l.target, l.access, l.state},
                       std::move(client), address_of(peer)),
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

namespace {

// One client from the listening socket's queue, non-blocking from the start (adopt_new_socket),
// with its address as accept4(2) gives it: asked later (getpeername), it is gone once the client
// has reset, and a client without an address would pass a deny list. The error is accept4's
// (would_block: the queue is empty).
boost::system::error_code accept_one(bound_listener& l, stream_socket& client,
                                     stream_endpoint& peer) {
  sockaddr_storage raw;
  socklen_t len = sizeof raw;
  const int fd = ::accept4(l.acceptor.native_handle(), reinterpret_cast<sockaddr*>(&raw), &len,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return {errno, boost::system::system_category()};
  peer = stream_endpoint(&raw, len, raw.ss_family == AF_UNIX ? 0 : IPPROTO_TCP);
  boost::system::error_code ec;
  adopt_new_socket(client, fd, raw.ss_family, ec);
  return ec;
}

// Errors of accept(2) that concern one connection only (Linux passes a new connection's pending
// network error on this way): the next accept takes the next one.
bool one_connection_failed(const boost::system::error_code& ec) {
  switch (ec.value()) {
    case ECONNABORTED:  // the client left before we took it
    case EINTR:
    case EPROTO:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
    case ENETDOWN:
      return true;
    default:
      return false;
  }
}

}  // namespace

void close_listener(worker& w, bound_listener& l) {
  // Connections the kernel has completed but nobody accepted yet would be reset by the close:
  // take them first, and serve them with the settings they came in under.
  boost::system::error_code ec;
  l.acceptor.non_blocking(true, ec);
  while (!ec && !w.draining) {
    stream_socket client(w.io);
    stream_endpoint peer;
    ec = accept_one(l, client, peer);
    if (!ec)
      start_session(w, l, std::move(client), peer);
    else if (one_connection_failed(ec))
      ec = {};
  }
  l.acceptor.close(ec);
  l.backoff.cancel();
}

asio::awaitable<void> accept_loop(worker& w, bound_listener& l) {
  using namespace std::chrono_literals;
  constexpr auto min_backoff = 10ms, max_backoff = 1000ms;
  // Accepted in a row before the sessions already started get their turn.
  constexpr unsigned batch = 64;
  auto backoff = min_backoff;
  unsigned taken = 0;
  boost::system::error_code ec;
  l.acceptor.non_blocking(true, ec);  // accept4 below must never block
  while (l.acceptor.is_open()) {
    // Take clients until the queue is empty, and only then wait, for the next client's edge (no
    // epoll_ctl to re-arm the listening socket: edge_wait.hpp).
    stream_socket client(w.io);
    stream_endpoint peer;
    ec = accept_one(l, client, peer);
    if (!ec) {
      backoff = min_backoff;
      start_session(w, l, std::move(client), peer);
      if (++taken % batch == 0) co_await asio::post(w.io, use_tuple);
      continue;
    }
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      std::tie(ec) = co_await detail::async_wait_edge(l.acceptor, use_tuple);
      // Closed for shutdown, by a reload that removed the listener, or because another process
      // accepts on the socket now (handed over): what the queue still holds is not ours to take
      // here (close_listener takes it when the listener is removed).
      if ((w.draining && !w.handed_over) || ec == asio::error::operation_aborted) break;
      continue;
    }
    if (one_connection_failed(ec)) continue;
    // EMFILE, ENFILE, ENOBUFS, ENOMEM: the connection waits in the backlog; retrying at once
    // would spin, so wait and try again, longer each time while it persists.
    main_log().warn("listener {}: accept failed: {}; retrying in {} ms", l.config->name,
                    ec.message(), backoff.count());
    l.backoff.expires_after(backoff);
    co_await l.backoff.async_wait(use_tuple);
    backoff = std::min(backoff * 2, max_backoff);
  }
}

}  // namespace zcproxy
