#include "takeover.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "zcproxy/log.hpp"

namespace zcproxy {

namespace {

constexpr int request_timeout_ms = 5000;  // for the new process's first message
constexpr int start_timeout_ms = 60000;   // for its "go": how long it may take to start
constexpr int answer_timeout_s = 10;      // the new process's wait for each answer

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

struct upgrade_server::impl {
  server& srv;
  const std::string path;
  const std::function<void()> on_handed_over;
  const std::string temporary = path + ".new";
  unique_fd listening;
  unique_fd stop{::eventfd(0, EFD_CLOEXEC)};
  std::thread thread;
  bool published = false;
  std::atomic<bool> handed_over{false};

  impl(server& s, std::string p, std::function<void()> f)
      : srv(s), path(std::move(p)), on_handed_over(std::move(f)) {}

  // Readable within `timeout_ms` (-1: no limit); false on a stop or a timeout.
  bool wait_readable(int fd, int timeout_ms) const {
    pollfd p[2] = {{fd, POLLIN, 0}, {stop.get(), POLLIN, 0}};
    for (;;) {
      const int n = ::poll(p, 2, timeout_ms);
      if (n < 0 && errno == EINTR) continue;
      return n > 0 && !(p[1].revents & POLLIN) && p[0].revents;
    }
  }

  void serve() {
    while (wait_readable(listening.get(), -1)) {
      unique_fd conn(::accept4(listening.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (conn.get() < 0) continue;  // the client left first, or out of fds: wait for the next
      if (serve_one(conn.get())) {
        listening.reset();  // no second take-over: this process is on its way out
        return;
      }
    }
  }

  // True once the sockets are handed over.
  bool serve_one(int conn) {
    ucred peer{};
    socklen_t len = sizeof peer;
    ::getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &peer, &len);
    // The file's mode keeps others out; this keeps out anyone who got a copy of the socket.
    if (peer.uid != ::geteuid() && peer.uid != 0) {
      main_log().warn("take-over: refused pid {} (uid {}): not this process's user or root",
                      peer.pid, peer.uid);
      send_message(conn, "error not this process's user or root");
      return false;
    }
    set_timeouts(conn, answer_timeout_s);
    std::string text;
    unique_fd none;
    const int e =
        wait_readable(conn, request_timeout_ms) ? receive_message(conn, text, none) : ETIMEDOUT;
    if (e == ECONNRESET) return false;  // a probe: a start making sure the socket is not in use
    if (e || text != "takeover") {
      main_log().warn("take-over: pid {} sent no request; ignored", peer.pid);
      return false;
    }
    std::vector<inherited_listener> sockets;
    try {
      sockets = srv.share_listeners();
    } catch (const std::exception& e) {
      main_log().error("take-over: pid {} asked; cannot share the sockets: {}", peer.pid, e.what());
      send_message(conn, std::string("error ") + e.what());
      return false;
    }
    std::size_t sent = 0;
    for (const auto& l : sockets)
      for (const auto& fd : l.fds) {
        if (const int e =
                send_message(conn, "socket " + l.bind->to_string() + " " + l.name, fd.get())) {
          main_log().error("take-over: sending to pid {}: {}; serving on as before", peer.pid,
                           error_text(e));
          return false;
        }
        ++sent;
      }
    if (send_message(conn, "end " + std::to_string(::getpid())) != 0) return false;
    sockets.clear();  // our copies of the dups: the new process holds its own now
    main_log().info(
        "take-over: sent {} listening sockets to pid {}; accepting on until it accepts too", sent,
        peer.pid);
    if (!wait_readable(conn, start_timeout_ms) || receive_message(conn, text, none) != 0 ||
        text != "go") {
      main_log().warn(
          "take-over: pid {} did not take over (it failed or left); serving on as before",
          peer.pid);
      return false;
    }
    main_log().info(
        "take-over: pid {} accepts now; this process stops accepting and drains its connections",
        peer.pid);
    handed_over = true;
    srv.hand_over();
    if (on_handed_over) on_handed_over();
    send_message(conn, "stopped");
    return true;
  }
};

upgrade_server::upgrade_server(server& srv, std::string path, bool replace,
                               std::function<void()> handed_over)
    : impl_(std::make_unique<impl>(srv, std::move(path), std::move(handed_over))) {
  auto& m = *impl_;
  auto fail = [&](const std::string& what, int e) {
    throw std::runtime_error("upgrade_socket " + m.path + ": " + what + ": " + error_text(e));
  };
  if (m.stop.get() < 0) fail("eventfd", errno);
  if (!replace) {
    // A live socket there is another zcproxy's way to be taken over: never steal it.
    unique_fd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    const sockaddr_un a = unix_address(m.path);
    if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0)
      throw std::runtime_error("upgrade_socket " + m.path +
                               ": in use by another process (to take over from it, start with "
                               "--takeover)");
  }
  m.listening = unique_fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (m.listening.get() < 0) fail("socket", errno);
  ::unlink(m.temporary.c_str());  // a leftover of a process that died between bind and rename
  const sockaddr_un a = unix_address(m.temporary);
  if (::bind(m.listening.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
    fail("bind " + m.temporary, errno);
  if (::chmod(m.temporary.c_str(), 0600) != 0 || ::listen(m.listening.get(), 4) != 0) {
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
  m.thread = std::thread([&m] { m.serve(); });
  main_log().info("upgrade socket on {} (zcproxy --takeover replaces this process)", m.path);
}

upgrade_server::~upgrade_server() {
  auto& m = *impl_;
  const std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(m.stop.get(), &one, sizeof one);
  if (m.thread.joinable()) m.thread.join();
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
