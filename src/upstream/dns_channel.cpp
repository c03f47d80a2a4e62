#include "dns_channel.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>

namespace zcproxy::detail {

namespace asio = boost::asio;

namespace {

constexpr int attempt_timeout_ms = 1000;  // per nameserver try
constexpr int tries = 2;

dns_result result_of(int status) {
  switch (status) {
    case ARES_SUCCESS:
      return dns_result::ok;
    case ARES_ENOTFOUND:
      return dns_result::nxdomain;
    case ARES_ENODATA:
      return dns_result::no_data;
    case ARES_ESERVFAIL:
      return dns_result::servfail;
    case ARES_EREFUSED:
      return dns_result::refused;
    case ARES_ETIMEOUT:
      return dns_result::timeout;
    default:
      return dns_result::error;
  }
}

int family_hint(address_family f) {
  return f == address_family::v4 ? AF_INET : f == address_family::v6 ? AF_INET6 : AF_UNSPEC;
}

void answered(void* arg, int status, int, ares_addrinfo* res) {
  std::unique_ptr<std::function<void(dns_answer)>> done(
      static_cast<std::function<void(dns_answer)>*>(arg));
  if (status == ARES_EDESTRUCTION || status == ARES_ECANCELLED) {
    if (res) ::ares_freeaddrinfo(res);
    return;
  }
  dns_answer a;
  a.result = result_of(status);
  if (status != ARES_SUCCESS) a.detail = ::ares_strerror(status);
  std::optional<int> ttl;
  for (auto* n = res ? res->nodes : nullptr; n; n = n->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    address at;
    if (n->ai_family == AF_INET) {
      ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(n->ai_addr)->sin_addr, text,
                  sizeof text);
    } else if (n->ai_family == AF_INET6) {
      ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(n->ai_addr)->sin6_addr, text,
                  sizeof text);
      at.v6 = true;
    } else {
      continue;
    }
    at.ip = text;
    a.addresses.push_back(at);
    ttl = std::min(ttl.value_or(n->ai_ttl), n->ai_ttl);
  }
  if (res) ::ares_freeaddrinfo(res);
  std::sort(a.addresses.begin(), a.addresses.end(), [](const address& x, const address& y) {
    return std::tie(x.v6, x.ip) < std::tie(y.v6, y.ip);
  });
  a.addresses.erase(std::unique(a.addresses.begin(), a.addresses.end()), a.addresses.end());
  if (a.result == dns_result::ok && a.addresses.empty()) a.result = dns_result::no_data;
  a.ttl = std::chrono::seconds(std::max(ttl.value_or(0), 0));
  (*done)(std::move(a));
}

}  // namespace

// A socket of c-ares's, watched for it. c-ares opens and closes its sockets itself: the
// descriptor is released, never closed, and that deregisters it before c-ares closes the fd.
struct dns_channel::socket_wait {
  socket_wait(asio::io_context& io, ares_socket_t fd) : d(io, fd) {}
  ~socket_wait() { d.release(); }
  asio::posix::stream_descriptor d;
  bool want_read = false, want_write = false;  // as c-ares said last
  bool reading = false, writing = false;       // a wait is queued
};

dns_channel::dns_channel(asio::io_context& io, const resolve_config& how,
                         std::function<void()> activity)
    : io_(io), activity_(std::move(activity)) {
  static std::once_flag library;
  std::call_once(library, [] { ::ares_library_init(ARES_LIB_INIT_ALL); });
  ares_options o{};
  int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB;
  o.timeout = attempt_timeout_ms;
  o.tries = tries;
  o.sock_state_cb = &dns_channel::socket_state;
  o.sock_state_cb_data = this;
  char dns_only[] = "b";
  if (!how.resolvers.empty()) {  // its own nameservers: no hosts file, no search domains
    mask |= ARES_OPT_LOOKUPS | ARES_OPT_FLAGS;
    o.lookups = dns_only;
    o.flags = ARES_FLAG_NOSEARCH;
  }
  if (const int r = ::ares_init_options(&ch_, &o, mask); r != ARES_SUCCESS)
    throw std::runtime_error(std::string("c-ares: ") + ::ares_strerror(r));
  if (how.resolvers.empty()) return;
  std::string csv;
  for (const auto& a : how.resolvers) {
    if (!csv.empty()) csv += ',';
    csv += a.to_string();
  }
  if (const int r = ::ares_set_servers_ports_csv(ch_, csv.c_str()); r != ARES_SUCCESS) {
    ::ares_destroy(ch_);
    throw std::runtime_error("c-ares: nameservers " + csv + ": " + ::ares_strerror(r));
  }
}

dns_channel::~dns_channel() {
  ::ares_destroy(ch_);  // closes its sockets (each released first, by socket_state)
  sockets_.clear();
}

void dns_channel::query(const dns_name& name, std::function<void(dns_answer)> done) {
  auto* cb = new std::function<void(dns_answer)>(std::move(done));
  ares_addrinfo_hints hints{};
  hints.ai_family = family_hint(name.how.family);
  hints.ai_socktype = SOCK_STREAM;
  ::ares_getaddrinfo(ch_, name.host.c_str(), nullptr, &hints, &answered, cb);
}

std::optional<std::chrono::milliseconds> dns_channel::due_in() const {
  timeval tv{};
  if (!::ares_timeout(ch_, nullptr, &tv)) return std::nullopt;  // nothing in flight
  return std::chrono::milliseconds(tv.tv_sec * 1000 + tv.tv_usec / 1000);
}

void dns_channel::process_timeouts() {
  ::ares_process_fd(ch_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

// c-ares's word on one of its sockets: what to wait for, or (0, 0) before it closes it.
void dns_channel::socket_state(void* self, ares_socket_t fd, int readable, int writable) {
  auto& c = *static_cast<dns_channel*>(self);
  if (!readable && !writable) {
    c.sockets_.erase(fd);
    return;
  }
  auto& s = c.sockets_[fd];
  if (!s) s = std::make_shared<socket_wait>(c.io_, fd);
  s->want_read = readable;
  s->want_write = writable;
  if (readable && !s->reading) c.wait(s, false);
  if (writable && !s->writing) c.wait(s, true);
}

void dns_channel::wait(const std::shared_ptr<socket_wait>& s, bool for_write) {
  (for_write ? s->writing : s->reading) = true;
  const auto what = for_write ? asio::posix::stream_descriptor::wait_write
                              : asio::posix::stream_descriptor::wait_read;
  s->d.async_wait(what, [this, weak = std::weak_ptr(s), for_write](boost::system::error_code ec) {
    auto s = weak.lock();
    if (!s) return;  // c-ares closed the socket, or the channel is gone
    (for_write ? s->writing : s->reading) = false;
    if (ec == asio::error::operation_aborted) return;
    const ares_socket_t fd = s->d.native_handle();
    // Not held while c-ares runs: when it closes this socket, socket_state releases the
    // descriptor first (and a new socket of c-ares's may take the same number).
    s.reset();
    ::ares_process_fd(ch_, for_write ? ARES_SOCKET_BAD : fd, for_write ? fd : ARES_SOCKET_BAD);
    if (auto it = sockets_.find(fd); it != sockets_.end()) {
      auto& again = *it->second;
      if (for_write ? again.want_write && !again.writing : again.want_read && !again.reading)
        wait(it->second, for_write);  // still wanted
    }
    activity_();
  });
}

}  // namespace zcproxy::detail
