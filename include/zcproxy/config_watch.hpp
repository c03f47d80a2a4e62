// `watch_config: true`: the config file watched with inotify, so a change on disk reloads it as
// SIGHUP does. The folder that holds the path is watched, not only the file, so every way a file
// is replaced is seen: a write in place, an editor's or `cp`'s rename over it, and Kubernetes'
// ConfigMap update (the file is a symlink through `..data`, a symlink the kubelet swaps by
// rename); when the path resolves into another folder (a symlink), that folder is watched too.
// Events are debounced (a change is a burst of them), and a reload happens only when the file's
// bytes differ from those of the last reload tried: one reload per change. Lives on one
// io_context's thread (the control loop's), and calls `reload` there.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

namespace zcproxy {

class config_watch {
 public:
  // Watches `path` (throws std::runtime_error when inotify cannot be had); `reload` runs after
  // each change, `debounce` after the last event of a burst.
  config_watch(boost::asio::io_context& io, std::string path, std::function<void()> reload,
               std::chrono::milliseconds debounce = std::chrono::milliseconds(200));
  ~config_watch();
  config_watch(const config_watch&) = delete;
  config_watch& operator=(const config_watch&) = delete;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;  // shared with its pending waits, which end when it goes
};

}  // namespace zcproxy
