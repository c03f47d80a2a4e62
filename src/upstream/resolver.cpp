#include "zcproxy/resolver.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mutex>
#include <optional>

#include "dns_channel.hpp"
#include "zcproxy/log.hpp"

namespace zcproxy {

namespace asio = boost::asio;

namespace {

using clock = std::chrono::steady_clock;

// With nothing due, the timer is still set this far ahead (it is reset at every event).
constexpr std::chrono::milliseconds idle_wait{60000};

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

// Shared with the handlers queued on the io_context, which hold it weakly (its c-ares sockets'
// handlers by plain pointer): it is destroyed on the io_context's thread, by the resolver's last
// handler or one that was running, never while another uses it.
struct resolver::impl : std::enable_shared_from_this<impl> {
  struct watched {
    watched(asio::io_context& io, dns_name n, std::function<void()> activity)
        : name(std::move(n)), ch(io, name.how, std::move(activity)) {}
    dns_name name;
    detail::dns_channel ch;
    bool in_flight = false;
    clock::time_point due{};  // the next resolution starts then
    std::vector<address> addresses;
    dns_stats stats;
  };

  impl(asio::io_context& io, on_change changed) : io(io), timer(io), changed(std::move(changed)) {}

  void take_wanted();
  void start_due(clock::time_point now);
  void reschedule();
  void answered(watched& w, dns_answer a);

  asio::io_context& io;
  asio::steady_timer timer;  // the next resolution due, or c-ares's next timeout
  on_change changed;
  mutable std::mutex mutex;                     // guards `wanted`, `names` and each one's stats
  std::optional<std::vector<dns_name>> wanted;  // a watch() not yet taken up on the io_context
  std::vector<std::unique_ptr<watched>> names;  // changed only on the io_context's thread
  std::mutex calls;                             // held while `changed` runs
  bool stopping = false;                        // under `calls`: the resolver is gone
};

// Keep the names still wanted, with their addresses; add the new ones.
void resolver::impl::take_wanted() {
  std::lock_guard lock(mutex);
  if (!wanted) return;
  std::vector<std::unique_ptr<watched>> next;
  for (auto& n : *wanted) {
    auto same =
        std::find_if(names.begin(), names.end(), [&](const auto& w) { return w && w->name == n; });
    if (same != names.end()) {
      next.push_back(std::move(*same));
      continue;
    }
    auto w = std::make_unique<watched>(io, n, [this] { reschedule(); });
    w->stats.name = n.host;
    w->stats.family = std::string(to_string(n.how.family));
    next.push_back(std::move(w));
  }
  names.swap(next);  // the dropped ones go with `next`, their queries abandoned
  wanted.reset();
}

void resolver::impl::start_due(clock::time_point now) {
  for (auto& w : names) {
    if (w->in_flight || now < w->due) continue;
    w->in_flight = true;
    w->ch.query(w->name, [this, w = w.get()](dns_answer a) { answered(*w, std::move(a)); });
  }
}

// Wake at the next resolution due or c-ares's next timeout, whichever comes first.
void resolver::impl::reschedule() {
  auto limit = idle_wait;
  const auto now = clock::now();
  for (const auto& w : names) {
    if (!w->in_flight)
      limit = std::min(limit, std::chrono::ceil<std::chrono::milliseconds>(
                                  std::max(w->due - now, clock::duration::zero())));
    if (auto due = w->ch.due_in()) limit = std::min(limit, *due);
  }
  timer.expires_after(limit);
  timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self) return;  // reset by a later event, or the resolver is gone
    for (auto& w : self->names) w->ch.process_timeouts();
    self->start_due(clock::now());
    self->reschedule();
  });
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
    if (changed) {  // applied before it is logged: a client that reads the line finds it in use
      std::lock_guard calling(calls);  // no call once the resolver is gone (see ~resolver)
      if (!stopping) changed(w.name, w.addresses);
    }
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
}

resolver::resolver(asio::io_context& io, on_change changed)
    : impl_(std::make_shared<impl>(io, std::move(changed))) {}

resolver::~resolver() {
  {
    std::lock_guard calling(impl_->calls);  // waits for a call under way
    impl_->stopping = true;
  }
  // Its c-ares sockets' handlers point into it: it goes on the io_context's thread, never while
  // one of them runs there (or with the io_context, if that runs no more).
  asio::io_context& io = impl_->io;
  asio::post(io, [last = std::move(impl_)] {});
}

void resolver::watch(std::vector<dns_name> names) {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->wanted = std::move(names);
  }
  asio::post(impl_->io, [weak = std::weak_ptr(impl_)] {
    if (auto self = weak.lock()) {
      self->take_wanted();
      self->start_due(clock::now());
      self->reschedule();
    }
  });
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
    asio::io_context io(1);
    detail::dns_channel ch(io, name.how, [] {});
    ch.query(name, [&got](dns_answer a) { got = std::move(a); });
    const auto end = clock::now() + deadline;
    while (!got && clock::now() < end) {
      auto limit = std::chrono::ceil<std::chrono::milliseconds>(end - clock::now());
      if (auto due = ch.due_in()) limit = std::min(limit, *due);
      io.restart();
      io.run_one_for(limit);  // a socket of c-ares's was ready, or the limit passed
      ch.process_timeouts();
    }
  }
  if (got) return *got;
  dns_answer late;
  late.result = dns_result::timeout;
  late.detail = "no answer within " + std::to_string(deadline.count()) + "ms";
  return late;
}

}  // namespace zcproxy
