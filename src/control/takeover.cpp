#include "takeover.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "zcproxy/deadline.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy {
namespace asio = boost::asio;

namespace {

constexpr std::chrono::milliseconds request_timeout{5000};  // for the new process's first message
constexpr std::chrono::milliseconds start_timeout{60000};   // for its "go": how long it may start
constexpr int answer_timeout_s = 10;  // the new process's wait for each answer

std::string error_text(int e) {
  return std::strerror(e);
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), std::min(path.size() + 1, sizeof a.sun_path - 1));
  return a;
}

// One message, with `fd` attached when it is >= 0. 0, or the errno.
int send_message(int sock, const std::string& text, int fd = -1) {
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  for (;;) {
    if (::sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0) return 0;
    if (errno != EINTR) return errno;  // EAGAIN here is SO_SNDTIMEO running out
  }
}

// One message (at most 4 KiB) into `text`, and the fd attached to it into `fd` (close-on-exec).
// 0, ECONNRESET for an orderly close by the peer, or the errno.
int receive_message(int sock, std::string& text, unique_fd& fd) {
  char data[4096];
  iovec iov{data, sizeof data};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  ssize_t n;
  do n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return errno;  // EAGAIN here is SO_RCVTIMEO running out
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int got;
      std::memcpy(&got, CMSG_DATA(c), sizeof got);
      fd = unique_fd(got);
    }
  if (n == 0) return ECONNRESET;  // the peer closed (a seqpacket socket has no empty message)
  // MSG_CTRUNC: an fd was dropped on the way (out of fds): the message cannot be trusted.
  if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) return EMSGSIZE;
  text.assign(data, static_cast<std::size_t>(n));
  return 0;
}

void set_timeouts(int sock, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

// ---- the old process's side ----

// Shared with its coroutine (which holds it as its first parameter), so a close() while a
// take-over is under way ends that coroutine before the impl goes.
struct upgrade_server::impl {
  asio::io_context& io;
  server& srv;
  const std::string path;
  const std::function<void()> on_handed_over;
  const std::string temporary = path + ".new";
  asio::posix::stream_descriptor listening;  // non-blocking: a client gone by accept4 is EAGAIN
  asio::steady_timer timer;                  // the wait for the new process's next message
  bool published = false;
  bool handed_over = false;
  bool closed = false;

  impl(asio::io_context& io, server& s, std::string p, std::function<void()> f)
      : io(io),
        srv(s),
        path(std::move(p)),
        on_handed_over(std::move(f)),
        listening(io),
        timer(io) {}

  void close() {
    closed = true;
    boost::system::error_code ignored;
    listening.close(ignored);
    timer.cancel();
  }

  // `conn` has a message within `limit`; false on a timeout or a close().
  asio::awaitable<bool> readable(asio::posix::stream_descriptor& conn,
                                 std::chrono::milliseconds limit) {
    auto r = co_await within(conn.async_wait(conn.wait_read, use_tuple), timer, limit);
    co_return r && !std::get<0>(*r.done) && !closed;
  }

  asio::awaitable<void> serve(std::shared_ptr<impl>) {
    for (;;) {
      auto [ec] = co_await listening.async_wait(listening.wait_read, use_tuple);
      if (ec || closed) co_return;
      const int fd = ::accept4(listening.native_handle(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;  // the client left first, or out of fds: wait for the next
      asio::posix::stream_descriptor conn(io, fd);
      if (co_await serve_one(conn)) {
        close();  // no second take-over: this process is on its way out
        co_return;
      }
    }
  }

  // True once the sockets are handed over.
  asio::awaitable<bool> serve_one(asio::posix::stream_descriptor& socket) {
    const int conn = socket.native_handle();
    ucred peer{};
    socklen_t len = sizeof peer;
    ::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &len);
    // The file's mode keeps others out; this keeps out anyone who got a copy of the socket.
    if (peer.uid != ::geteuid() && peer.uid != 0) {
      main_log().warn("take-over: refused pid {} (uid {}): not this process's user or root",
                      peer.pid, peer.uid);
      send_message(conn, "error not this process's user or root");
      co_return false;
    }
    set_timeouts(conn, answer_timeout_s);
    std::string text;
    unique_fd none;
    const int e =
        co_await readable(socket, request_timeout) ? receive_message(conn, text, none) : ETIMEDOUT;
    if (e == ECONNRESET) co_return false;  // a probe: a start making sure the socket is free
    if (e || text != "takeover") {
      main_log().warn("take-over: pid {} sent no request; ignored", peer.pid);
      co_return false;
    }
    std::vector<inherited_listener> sockets;
    try {
      sockets = srv.share_listeners();
    } catch (const std::exception& e) {
      main_log().error("take-over: pid {} asked; cannot share the sockets: {}", peer.pid, e.what());
      send_message(conn, std::string("error ") + e.what());
      co_return false;
    }
    std::size_t sent = 0;
    for (const auto& l : sockets)
      for (const auto& fd : l.fds) {
        if (const int e =
                send_message(conn, "socket " + l.bind->to_string() + " " + l.name, fd.get())) {
          main_log().error("take-over: sending to pid {}: {}; serving on as before", peer.pid,
                           error_text(e));
          co_return false;
        }
        ++sent;
      }
    if (send_message(conn, "end " + std::to_string(::getpid())) != 0) co_return false;
    sockets.clear();  // our copies of the dups: the new process holds its own now
    main_log().info(
        "take-over: sent {} listening sockets to pid {}; accepting on until it accepts too", sent,
        peer.pid);
    if (!co_await readable(socket, start_timeout) || receive_message(conn, text, none) != 0 ||
        text != "go") {
      main_log().warn(
          "take-over: pid {} did not take over (it failed or left); serving on as before",
          peer.pid);
      co_return false;
    }
    main_log().info(
        "take-over: pid {} accepts now; this process stops accepting and drains its connections",
        peer.pid);
    handed_over = true;
    srv.hand_over();
    if (on_handed_over) on_handed_over();
    send_message(conn, "stopped");
    co_return true;
  }
};

upgrade_server::upgrade_server(asio::io_context& io, server& srv, std::string path, bool replace,
                               std::function<void()> handed_over)
    : impl_(std::make_shared<impl>(io, srv, std::move(path), std::move(handed_over))) {
  auto& m = *impl_;
  auto fail = [&](const std::string& what, int e) {
    throw std::runtime_error("upgrade_socket " + m.path + ": " + what + ": " + error_text(e));
  };
  if (!replace) {
    // A live socket there is another zcproxy's way to be taken over: never steal it.
    unique_fd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    const sockaddr_un a = unix_address(m.path);
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0)
      throw std::runtime_error("upgrade_socket " + m.path +
                               ": in use by another process (to take over from it, start with "
                               "--takeover)");
  }
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) fail("socket", errno);
  m.listening.assign(fd);
  ::unlink(m.temporary.c_str());  // a leftover of a process that died between bind and rename
  const sockaddr_un a = unix_address(m.temporary);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
    fail("bind " + m.temporary, errno);
  if (::chmod(m.temporary.c_str(), 0600) != 0 || ::listen(fd, 4) != 0) {
    const int e = errno;
    ::unlink(m.temporary.c_str());
    fail("listen", e);
  }
}

void upgrade_server::publish() {
  auto& m = *impl_;
  // rename(2) replaces the old process's file at once: the path never goes missing.
  if (::rename(m.temporary.c_str(), m.path.c_str()) != 0) {
    const int e = errno;
    ::unlink(m.temporary.c_str());
    throw std::runtime_error("upgrade_socket " + m.path + ": rename: " + error_text(e));
  }
  m.published = true;
  asio::co_spawn(m.io, m.serve(impl_), asio::detached);
  main_log().info("upgrade socket on {} (zcproxy --takeover replaces this process)", m.path);
}

upgrade_server::~upgrade_server() {
  auto& m = *impl_;
  m.close();
  // Handed over: the path is the new process's socket now.
  if (!m.published)
    ::unlink(m.temporary.c_str());
  else if (!m.handed_over)
    ::unlink(m.path.c_str());
}

// ---- the new process's side ----

takeover_client::takeover_client(const std::string& path) : path_(path) {
  auto fail = [&](const std::string& what) {
    throw std::runtime_error("take-over via " + path_ + ": " + what +
                             "; nothing was taken over, the running process serves on");
  };
  conn_ = unique_fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (conn_.get() < 0) fail("socket: " + error_text(errno));
  const sockaddr_un a = unix_address(path_);
  if (::connect(conn_.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
    fail("cannot connect: " + error_text(errno) +
         " (is a zcproxy with this upgrade_socket running?)");
  set_timeouts(conn_.get(), answer_timeout_s);
  if (const int e = send_message(conn_.get(), "takeover")) fail("send: " + error_text(e));
  std::size_t count = 0;
  for (;;) {
    std::string text;
    unique_fd fd;
    if (const int e = receive_message(conn_.get(), text, fd))
      fail(e == ECONNRESET ? "the running process closed the connection"
                           : "receive: " + error_text(e));
    if (text.rfind("error ", 0) == 0) fail("the running process refused: " + text.substr(6));
    if (text.rfind("end ", 0) == 0) {
      old_pid_ = static_cast<pid_t>(parse_digits(text.substr(4)).value_or(0));
      break;
    }
    // "socket BIND NAME"
    const auto space = text.find(' ', 7);
    const auto bind = text.rfind("socket ", 0) == 0 && space != std::string::npos
                          ? parse_address(text.substr(7, space - 7))
                          : std::nullopt;
    if (!bind || fd.get() < 0) fail("unexpected message '" + text + "'");
    const std::string name = text.substr(space + 1);
    if (sockets_.empty() || sockets_.back().name != name || sockets_.back().bind != bind)
      sockets_.push_back({name, bind, {}});
    sockets_.back().fds.push_back(std::move(fd));
    ++count;
  }
  main_log().info("take-over: received {} listening sockets of {} listeners from pid {}", count,
                  sockets_.size(), old_pid_);
}

takeover_client::~takeover_client() = default;

std::vector<inherited_listener> takeover_client::take() {
  return std::move(sockets_);
}

void takeover_client::finish() {
  std::string text;
  unique_fd none;
  if (send_message(conn_.get(), "go") != 0 || receive_message(conn_.get(), text, none) != 0 ||
      text != "stopped") {
    main_log().warn("take-over: pid {} did not confirm it stopped accepting", old_pid_);
    return;
  }
  main_log().info("take-over: pid {} stopped accepting and drains; this process serves alone",
                  old_pid_);
}

}  // namespace zcproxy
