#include "zcproxy/config_watch.hpp"

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

#include "zcproxy/log.hpp"

namespace zcproxy {
namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

// The file's bytes; nullopt when it cannot be read now (mid-swap, say: the next event retries).
std::optional<std::string> contents(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The folder `path` resolves into, when it resolves; empty otherwise.
std::string resolved_folder(const std::string& path) {
  std::error_code ec;
  const fs::path real = fs::canonical(path, ec);
  return ec ? std::string() : real.parent_path().string();
}

constexpr std::uint32_t folder_events = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE |
                                        IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_DELETE_SELF |
                                        IN_MOVE_SELF;

}  // namespace

struct config_watch::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& io, std::string path, std::function<void()> reload,
       std::chrono::milliseconds debounce)
      : path(std::move(path)),
        reload(std::move(reload)),
        debounce(debounce),
        events(io),
        settle(io) {}

  const std::string path;
  const std::function<void()> reload;
  const std::chrono::milliseconds debounce;
  asio::posix::stream_descriptor events;  // the inotify fd
  asio::steady_timer settle;
  int folder_watch = -1, target_watch = -1;
  std::string target_folder;
  std::optional<std::string> last;  // the bytes of the last reload tried (or of the start)
  std::array<char, 8192> buffer;    // the events, read and dropped

  void start() {
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
      throw std::runtime_error(std::string("watch_config: inotify: ") + std::strerror(errno));
    events.assign(fd);
    const std::string folder = fs::absolute(path).parent_path().string();
    folder_watch = ::inotify_add_watch(fd, folder.c_str(), folder_events);
    if (folder_watch < 0)
      throw std::runtime_error("watch_config: cannot watch " + folder + ": " +
                               std::strerror(errno));
    follow_target();
    last = contents(path);
    main_log().info("watch_config: watching {} (and the folder it is in) for changes", path);
    read_events();
  }

  // The folder the path resolves into, watched too when it is another one (a symlink to a file
  // elsewhere, whose writes in place raise no event in the path's own folder).
  void follow_target() {
    const std::string now = resolved_folder(path);
    if (now == target_folder) return;
    if (target_watch >= 0 && target_watch != folder_watch)
      ::inotify_rm_watch(events.native_handle(), target_watch);
    target_watch = -1;
    target_folder = now;
    if (!now.empty())
      target_watch = ::inotify_add_watch(events.native_handle(), now.c_str(), folder_events);
  }

  void read_events() {
    events.async_read_some(asio::buffer(buffer), [self = shared_from_this()](
                                                     boost::system::error_code ec, std::size_t) {
      if (ec) return;  // closed: the watch has gone
      // Which events they were does not matter: the bytes decide (see settled()).
      self->settle.expires_after(self->debounce);
      self->settle.async_wait([w = self->weak_from_this()](boost::system::error_code e) {
        if (auto s = w.lock(); s && !e) s->settled();
      });
      self->read_events();
    });
  }

  // A burst of events has ended: reload if the bytes changed.
  void settled() {
    follow_target();
    auto now = contents(path);
    if (!now || now == last) return;
    last = std::move(now);
    main_log().info("watch_config: {} changed; reloading as on SIGHUP", path);
    reload();
  }
};

config_watch::config_watch(asio::io_context& io, std::string path, std::function<void()> reload,
                           std::chrono::milliseconds debounce)
    : impl_(std::make_shared<impl>(io, std::move(path), std::move(reload), debounce)) {
  impl_->start();
}

config_watch::~config_watch() {
  boost::system::error_code ignored;
  impl_->settle.cancel();
  impl_->events.close(ignored);
}

}  // namespace zcproxy
