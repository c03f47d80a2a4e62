// `watch_config: true`: the config file watched with inotify, so a change on disk reloads it as
// SIGHUP does. The folder that holds the path is watched, not only the file, so every way a file
// is replaced is seen: a write in place, an editor's or `cp`'s rename over it, and Kubernetes'
// ConfigMap update (the file is a symlink through `..data`, a symlink the kubelet swaps by
// rename); when the path resolves into another folder (a symlink), that folder is watched too.
// Only events for those names count (a busy folder does not hold a reload back); a burst of them
// is one change: it reloads `debounce` after the last one, or a second after the first at most.
// A reload happens only when the file's bytes differ from those last loaded (at start: those the
// process started with), so each change reloads once; a refused reload is tried again at the next
// event. A watched folder that is replaced is watched again. Lives on one io_context's thread
// (the control loop's), and calls `reload` there.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace zcproxy {

class config_watch {
 public:
  // Watches `path`, loaded from bytes of digest `loaded` (config::source_digest); throws
  // std::runtime_error when inotify cannot be had. `reload` runs after each change and says
  // whether it applied.
  config_watch(boost::asio::io_context& io, std::string path, std::size_t loaded,
               std::function<bool()> reload,
               std::chrono::milliseconds debounce = std::chrono::milliseconds(200));
  ~config_watch();
  config_watch(const config_watch&) = delete;
  config_watch& operator=(const config_watch&) = delete;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;  // shared with its pending waits, which end when it goes
};

}  // namespace zcproxy
