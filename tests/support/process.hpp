// Test support for the zcproxy binary: a temporary directory, reading a file whole, the binary
// run as a child process (stdout and stderr to files), and the binary serving a config.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace test {

using namespace std::chrono_literals;

// A fresh directory under /tmp, removed with everything in it when this goes away.
struct temp_dir {
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  // The path of `name` in the directory; written with `text` first when that is not empty.
  std::string file(const std::string& name, const std::string& text = "") const;
  std::string path;
};

// The whole file ("" when it cannot be read).
std::string slurp(const std::string& path);

// What a process holds: its open fds (/proc/PID/fd) and resident memory (VmRSS, KiB).
std::size_t open_fds(pid_t pid);
std::size_t rss_kib(pid_t pid);
// The fields of a /proc/PID/status line ("Uid:", "Gid:", "Groups:"), without the key.
std::vector<std::string> status_fields(pid_t pid, const std::string& key);

// What a child gets besides its arguments: more environment ("NAME=value"), and a socket passed
// as its fd 3 with LISTEN_PID set to the child's own pid, as systemd's socket activation does.
struct child_setup {
  std::vector<std::string> env;
  int listen_fd = -1;
};

// The binary, with stdout and stderr going to files (and at most max_fds open files, if given).
struct process {
  process(std::vector<std::string> args, const std::string& out, const std::string& err,
          rlim_t max_fds = 0);
  process(std::vector<std::string> args, const std::string& out, const std::string& err,
          const child_setup& setup);
  // Another program (found on PATH), with stdin from the file `in`.
  process(const std::string& program, std::vector<std::string> args, const std::string& in,
          const std::string& out, const std::string& err);
  process(const process&) = delete;
  process& operator=(const process&) = delete;
  // The exit code, or -1 if it has not exited within the deadline (then it is killed).
  int wait(std::chrono::milliseconds deadline = 20s);
  ~process();
  pid_t pid = -1;

 private:
  void start(std::vector<std::string>& args, const std::string& in, const std::string& out,
             const std::string& err, rlim_t max_fds, const child_setup* setup = nullptr);
};

// The binary running with a config written to d/zcproxy.yaml, its stdout in d/out and its stderr
// in d/err, once its start-up line has said on which port the listener `listener` listens.
struct running_proxy {
  // `head` plus one listener "web" on 127.0.0.1:0 in front of 127.0.0.1:upstream_port.
  running_proxy(const temp_dir& d, std::uint16_t upstream_port, const std::string& head,
                rlim_t max_fds = 0);
  // Any config: `yaml` is the whole file; `more_args` follow "-c FILE".
  running_proxy(const temp_dir& d, const std::string& yaml, const std::string& listener,
                rlim_t max_fds = 0, const std::vector<std::string>& more_args = {});
  // Its stderr so far.
  std::string log() const { return slurp(err); }
  // The port its log says `what` ("listener NAME" or "admin") listens on at 127.0.0.1, once it
  // says so.
  std::uint16_t port_of(const std::string& what) const;

  std::string config;  // the config file's path: rewrite it, then SIGHUP to reload it
  std::string err;     // stderr's path
  process proc;
  std::uint16_t port = 0;
};

}  // namespace test
