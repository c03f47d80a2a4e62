#include "config_watch.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string_view>

#include "zcproxy/log.hpp"

namespace zcproxy {
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// The digest of the file's bytes, as the loader takes it; nullopt when it cannot be read now
// (mid-swap, say: the next event tries again).
std::optional<std::size_t> digest_of(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return std::hash<std::string>{}(out.str());
}

// What `path` resolves to (empty when it does not).
fs::path resolved(const std::string& path) {
  std::error_code ec;
  fs::path real = fs::canonical(path, ec);
  return ec ? fs::path() : real;
}

constexpr std::uint32_t folder_events =
    IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB;
// The watch itself is gone (its folder deleted or moved away): watch again.
constexpr std::uint32_t watch_lost = IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF;
constexpr auto longest_burst = std::chrono::seconds(1);

}  // namespace

struct config_watch::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& io, std::string path, std::size_t loaded, std::function<bool()> reload,
       std::chrono::milliseconds debounce)
      : path(std::move(path)),
        name(fs::path(this->path).filename().string()),
        folder(fs::absolute(this->path).parent_path().string()),
        reload(std::move(reload)),
        debounce(debounce),
        events(io),
        settle(io),
        last(loaded) {}

  const std::string path, name, folder;
  const std::function<bool()> reload;
  const std::chrono::milliseconds debounce;
  asio::posix::stream_descriptor events;  // the inotify fd
  asio::steady_timer settle;
  std::optional<asio::steady_timer::time_point> burst_started;
  int folder_watch = -1, target_watch = -1;
  fs::path target;   // what the path resolves to, when in another folder than `folder`
  std::size_t last;  // the digest of the bytes last loaded
  // Room for a burst of events in one read (each is sizeof(inotify_event) + at most NAME_MAX + 1).
  alignas(inotify_event) std::array<char, 8192> buffer;

  void start() {
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
      throw std::runtime_error(std::string("watch_config: inotify: ") + std::strerror(errno));
    events.assign(fd);
    watch();
    if (folder_watch < 0)
      throw std::runtime_error("watch_config: cannot watch " + folder + ": " +
                               std::strerror(errno));
    main_log().info("watch_config: watching {} (and the folder it is in) for changes", path);
    read_events();
  }

  // (Re)adds the watches: the path's folder, and the folder it resolves into when another one (a
  // symlink to a file elsewhere, whose writes in place raise no event in the path's own folder).
  void watch() {
    const int fd = events.native_handle();
    folder_watch = ::inotify_add_watch(fd, folder.c_str(), folder_events | watch_lost);
    const fs::path now = resolved(path);
    const bool elsewhere = !now.empty() && now.parent_path() != fs::path(folder);
    if (target_watch >= 0 && (!elsewhere || now.parent_path() != target.parent_path())) {
      ::inotify_rm_watch(fd, target_watch);
      target_watch = -1;
    }
    target = elsewhere ? now : fs::path();
    if (elsewhere && target_watch < 0)
      target_watch =
          ::inotify_add_watch(fd, target.parent_path().c_str(), folder_events | watch_lost);
  }

  // Whether an event can mean the config changed: the path's name in its folder, a ConfigMap's
  // `..` entries (its `..data` link and timestamped folders), or the resolved file's name.
  bool counts(const inotify_event& e) const {
    if (e.mask & watch_lost) return true;
    const std::string_view n = e.len ? std::string_view(e.name) : std::string_view();
    if (e.wd == folder_watch) return n == name || n.starts_with("..");
    return e.wd == target_watch && !target.empty() && n == target.filename().string();
  }

  void read_events() {
    events.async_read_some(asio::buffer(buffer), [self = shared_from_this()](
                                                     boost::system::error_code ec, std::size_t n) {
      if (ec) return;  // closed: the watch has gone
      self->on_events(n);
      self->read_events();
    });
  }

  void on_events(std::size_t n) {
    bool relevant = false, lost = false;
    for (std::size_t at = 0; at + sizeof(inotify_event) <= n;) {
      const auto* e = reinterpret_cast<const inotify_event*>(buffer.data() + at);
      relevant = relevant || counts(*e) || (e->mask & IN_Q_OVERFLOW);
      lost = lost || (e->mask & watch_lost);
      at += sizeof(inotify_event) + e->len;
    }
    if (lost) {
      watch();
      if (folder_watch < 0)
        main_log().error(
            "watch_config: {} is gone; the config is no longer watched (SIGHUP still "
            "reloads it)",
            folder);
    }
    if (!relevant) return;
    const auto now = asio::steady_timer::clock_type::now();
    if (!burst_started) burst_started = now;
    settle.expires_at(std::min(now + debounce, *burst_started + longest_burst));
    settle.async_wait([w = weak_from_this()](boost::system::error_code ec) {
      auto self = w.lock();
      // A wait that had completed when the expiry moved still runs: only the latest one counts.
      if (!self || ec || asio::steady_timer::clock_type::now() < self->settle.expiry()) return;
      self->settled();
    });
  }

  // A burst of events has ended: reload if the bytes changed.
  void settled() {
    burst_started.reset();
    watch();  // a ConfigMap swap moves the path into another folder
    const auto now = digest_of(path);
    if (!now || *now == last) return;
    main_log().info("watch_config: {} changed; reloading as on SIGHUP", path);
    if (reload()) last = *now;  // refused: tried again at the next event
  }
};

config_watch::config_watch(asio::io_context& io, std::string path, std::size_t loaded,
                           std::function<bool()> reload, std::chrono::milliseconds debounce)
    : impl_(std::make_shared<impl>(io, std::move(path), loaded, std::move(reload), debounce)) {
  impl_->start();
}

config_watch::~config_watch() {
  boost::system::error_code ignored;
  impl_->settle.cancel();
  impl_->events.close(ignored);
}

}  // namespace zcproxy
