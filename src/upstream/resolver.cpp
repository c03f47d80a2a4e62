#include "zcproxy/resolver.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

#include "zcproxy/log.hpp"

namespace zcproxy {

namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

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

// One c-ares channel, set up for one name's resolve_config.
class channel {
 public:
  explicit channel(const resolve_config& how) {
    static std::once_flag library;
    std::call_once(library, [] { ::ares_library_init(ARES_LIB_INIT_ALL); });
    ares_options o{};
    int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    o.timeout = attempt_timeout_ms;
    o.tries = tries;
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
    for (const auto& a : how.resolvers) csv += (csv.empty() ? "" : ",") + a.to_string();
    if (const int r = ::ares_set_servers_ports_csv(ch_, csv.c_str()); r != ARES_SUCCESS) {
      ::ares_destroy(ch_);
      throw std::runtime_error("c-ares: nameservers " + csv + ": " + ::ares_strerror(r));
    }
  }
  ~channel() { ::ares_destroy(ch_); }  // what is in flight completes with ARES_EDESTRUCTION
  channel(const channel&) = delete;
  channel& operator=(const channel&) = delete;

  // Start resolving; `done` is called from process() (or the destructor) with the answer.
  void query(const dns_name& name, std::function<void(dns_answer)> done) {
    auto* cb = new std::function<void(dns_answer)>(std::move(done));
    ares_addrinfo_hints hints{};
    hints.ai_family = family_hint(name.how.family);
    hints.ai_socktype = SOCK_STREAM;
    ::ares_getaddrinfo(ch_, name.host.c_str(), nullptr, &hints, &channel::answered, cb);
  }

  // The fds to poll (with their events) and the longest wait before process() is due.
  void add_fds(std::vector<pollfd>& out, std::vector<channel*>& owners) {
    ares_socket_t socks[ARES_GETSOCK_MAXNUM];
    const int bits = ::ares_getsock(ch_, socks, ARES_GETSOCK_MAXNUM);
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
      short events = 0;
      if (ARES_GETSOCK_READABLE(bits, i)) events |= POLLIN;
      if (ARES_GETSOCK_WRITABLE(bits, i)) events |= POLLOUT;
      if (!events) continue;
      out.push_back({socks[i], events, 0});
      owners.push_back(this);
    }
  }
  std::optional<std::chrono::milliseconds> due_in() {
    timeval tv{};
    if (!::ares_timeout(ch_, nullptr, &tv)) return std::nullopt;  // nothing in flight
    return std::chrono::milliseconds(tv.tv_sec * 1000 + tv.tv_usec / 1000);
  }
  void process(const pollfd& p) {
    ::ares_process_fd(ch_, (p.revents & (POLLIN | POLLERR | POLLHUP)) ? p.fd : ARES_SOCKET_BAD,
                      (p.revents & POLLOUT) ? p.fd : ARES_SOCKET_BAD);
  }
  void process_timeouts() { ::ares_process_fd(ch_, ARES_SOCKET_BAD, ARES_SOCKET_BAD); }

 private:
  static void answered(void* arg, int status, int, ares_addrinfo* res) {
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

  ares_channel ch_ = nullptr;
};

// Wait (poll) on every channel's fds and `wake`, at most `limit`; then let each channel read
// what came and handle its timeouts.
void poll_once(std::vector<channel*> channels, int wake, std::chrono::milliseconds limit) {
  std::vector<pollfd> fds;
  std::vector<channel*> owners;
  if (wake >= 0) {
    fds.push_back({wake, POLLIN, 0});
    owners.push_back(nullptr);
  }
  for (auto* c : channels) {
    c->add_fds(fds, owners);
    if (auto due = c->due_in()) limit = std::min(limit, *due);
  }
  const int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::max(limit.count(), 0L)));
  if (n < 0 && errno != EINTR)
    throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
  for (std::size_t i = 0; i < fds.size(); ++i)
    if (owners[i] && fds[i].revents) owners[i]->process(fds[i]);
  for (auto* c : channels) c->process_timeouts();
}

std::string addresses_text(const std::vector<address>& list) {
  std::string out;
  for (const auto& a : list) out += (out.empty() ? "" : ", ") + (a.v6 ? "[" + a.ip + "]" : a.ip);
  return out.empty() ? "none" : out;
}

}  // namespace

std::vector<dns_name> names_in(const config& c) {
  std::vector<dns_name> out;
  for (const auto& u : c.upstreams)
    for (const auto& e : u.endpoints) {
      dns_name n{e.host, u.resolve};
      if (!e.host.empty() && std::find(out.begin(), out.end(), n) == out.end()) out.push_back(n);
    }
  return out;
}

struct resolver::impl {
  struct watched {
    explicit watched(dns_name n) : name(std::move(n)), ch(name.how) {}
    dns_name name;
    channel ch;
    bool in_flight = false;
    clock::time_point due{};  // the next resolution starts then
    std::vector<address> addresses;
    dns_stats stats;
  };

  explicit impl(on_change changed) : changed(std::move(changed)) {
    wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) throw std::runtime_error(std::string("eventfd: ") + std::strerror(errno));
    thread = std::thread([this] { run(); });
  }
  ~impl() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    poke();
    thread.join();
    ::close(wake);
  }

  void poke() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake, &one, sizeof one);
  }

  void run();
  void start_due(clock::time_point now);
  void answered(watched& w, dns_answer a);

  on_change changed;
  int wake = -1;
  std::thread thread;
  mutable std::mutex mutex;                     // guards the three below and each one's stats
  std::optional<std::vector<dns_name>> wanted;  // a watch() not yet taken up by the thread
  bool stopping = false;
  std::vector<std::unique_ptr<watched>> names;  // changed only on the thread, under the mutex
};

void resolver::impl::run() {
  for (;;) {
    {
      std::lock_guard lock(mutex);
      if (stopping) break;
      if (wanted) {  // keep the names still wanted, with their addresses; add the new ones
        std::vector<std::unique_ptr<watched>> next;
        for (auto& n : *wanted) {
          auto same = std::find_if(names.begin(), names.end(),
                                   [&](const auto& w) { return w && w->name == n; });
          if (same != names.end()) {
            next.push_back(std::move(*same));
            continue;
          }
          auto w = std::make_unique<watched>(n);
          w->stats.name = n.host;
          w->stats.family = std::string(to_string(n.how.family));
          next.push_back(std::move(w));
        }
        names.swap(next);  // the dropped ones go with `next`, their queries abandoned
        wanted.reset();
      }
    }
    start_due(clock::now());
    // Sleep until the next resolution is due, an answer comes, or watch() or the destructor pokes.
    auto limit = std::chrono::milliseconds(60000);
    std::vector<channel*> channels;
    for (const auto& w : names) {
      channels.push_back(&w->ch);
      if (!w->in_flight)
        limit = std::min(limit, std::chrono::ceil<std::chrono::milliseconds>(
                                    std::max(w->due - clock::now(), clock::duration::zero())));
    }
    poll_once(channels, wake, limit);
    std::uint64_t drained;
    [[maybe_unused]] auto n = ::read(wake, &drained, sizeof drained);
  }
}

void resolver::impl::start_due(clock::time_point now) {
  for (auto& w : names) {
    if (w->in_flight || now < w->due) continue;
    w->in_flight = true;
    w->ch.query(w->name, [this, w = w.get()](dns_answer a) { answered(*w, std::move(a)); });
  }
}

void resolver::impl::answered(watched& w, dns_answer a) {
  w.in_flight = false;
  const auto& how = w.name.how;
  const bool ok = a.result == dns_result::ok;
  const auto next_in =
      ok ? std::clamp<std::chrono::milliseconds>(a.ttl, how.min_interval, how.max_interval)
         : how.min_interval;
  w.due = clock::now() + next_in;
  const dns_result before = w.stats.last;
  const bool first = w.stats.results == decltype(w.stats.results){};
  bool change = false;
  {
    std::lock_guard lock(mutex);
    ++w.stats.results[static_cast<std::size_t>(a.result)];
    w.stats.last = a.result;
    if (ok && a.addresses != w.addresses) {
      w.addresses = a.addresses;
      w.stats.addresses = a.addresses.size();
      w.stats.resolved = true;
      change = true;
    }
  }
  const std::string& host = w.name.host;
  if (change) {
    main_log().info("dns: {} resolves to {} (ttl {}s; next in {}ms)", host,
                    addresses_text(w.addresses), a.ttl.count(), next_in.count());
  } else if (!ok && (first || before != a.result)) {  // once per change
    if (w.stats.resolved)
      main_log().warn("dns: {}: {} ({}); its last addresses stay in use: {}", host,
                      to_string(a.result), a.detail, addresses_text(w.addresses));
    else
      main_log().warn("dns: {}: {} ({}); its endpoints are unusable until it resolves", host,
                      to_string(a.result), a.detail);
  } else if (ok && before != dns_result::ok && !first) {
    main_log().info("dns: {} resolves again, to the same addresses: {}", host,
                    addresses_text(w.addresses));
  }
  if (change && changed) changed(w.name, w.addresses);
}

resolver::resolver(on_change changed) : impl_(std::make_unique<impl>(std::move(changed))) {}

resolver::~resolver() = default;

void resolver::watch(std::vector<dns_name> names) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->wanted = std::move(names);
  }
  impl_->poke();
}

std::vector<dns_stats> resolver::stats() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<dns_stats> out;
  for (const auto& w : impl_->names) out.push_back(w->stats);
  return out;
}

dns_answer resolver::resolve_once(const dns_name& name, std::chrono::milliseconds deadline) {
  std::optional<dns_answer> got;
  {
    channel ch(name.how);
    ch.query(name, [&got](dns_answer a) { got = std::move(a); });
    const auto end = clock::now() + deadline;
    while (!got && clock::now() < end)
      poll_once({&ch}, -1, std::chrono::ceil<std::chrono::milliseconds>(end - clock::now()));
  }
  if (got) return *got;
  dns_answer late;
  late.result = dns_result::timeout;
  late.detail = "no answer within " + std::to_string(deadline.count()) + "ms";
  return late;
}

}  // namespace zcproxy
