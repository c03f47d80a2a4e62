// Validated configuration: plain, immutable structs built once from YAML.
// yaml-cpp is used only in config.cpp; everything else sees these types.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace zcproxy {

// How a direction of a connection moves bytes.
enum class engine_mode {
  automatic,  // splice; copy when splice is refused (EINVAL/ENOSYS) or the pipe pool is at its cap
  splice,     // splice only; a connection whose sockets refuse splice is closed
  copy,       // buffered copy through user space
  // Per connection: copy when both peers are on this host (loopback: the receiver copies anyway
  // and the pages are cache-hot, so copy costs fewer cycles than splice), else as automatic.
  adaptive,
};

std::string_view to_string(engine_mode m);

// An IP literal and port, as written in the config ("127.0.0.1:9000", "[::1]:9000").
struct address {
  std::string ip;  // without brackets
  std::uint16_t port = 0;
  bool v6 = false;

  std::string to_string() const;  // "127.0.0.1:9000" or "[::1]:9000"
  bool operator==(const address&) const = default;
};

struct log_config {
  std::string level = "info";  // trace | debug | info | warn | error | critical | off
  bool access_log = true;
};

struct relay_config {
  engine_mode engine = engine_mode::adaptive;
  std::size_t pipe_size = 1 << 20;    // bytes asked of F_SETPIPE_SZ
  std::size_t max_pipes = 4096;       // per thread; past it a direction uses copy
  std::size_t buffer_size = 1 << 20;  // copy engine buffer, bytes
};

struct listener_config {
  std::string name;
  address bind;
  std::string upstream;  // name of an entry in config::upstreams (checked)
};

struct upstream_config {
  std::string name;
  std::vector<address> endpoints;  // tried in round-robin order, next one on connect failure
  std::chrono::milliseconds connect_timeout{3000};
};

struct config {
  std::string source;    // file the config came from (for messages)
  unsigned threads = 0;  // 0 = one per core
  log_config log;
  relay_config relay;
  std::chrono::milliseconds drain_timeout{10000};
  std::vector<listener_config> listeners;
  std::vector<upstream_config> upstreams;

  const upstream_config* find_upstream(std::string_view name) const;
  // Threads to run: `threads`, or the number of cores when it is 0.
  unsigned effective_threads() const;
};

// Every problem found in a config, each "FILE:LINE:COL: KEY: what was expected".
class config_error : public std::runtime_error {
 public:
  explicit config_error(std::vector<std::string> errors);
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::vector<std::string> errors_;
};

// Load and validate; throws config_error listing every problem found.
config load_config_file(const std::string& path);
// Same, from YAML text; `source` names it in messages.
config load_config_string(const std::string& yaml, const std::string& source = "<string>");

// "64KiB", "1MiB", "512", "2GiB", "16KB"... -> bytes; nullopt when malformed.
std::optional<std::size_t> parse_size(std::string_view text);
// "500ms", "3s", "1m", "1h" -> milliseconds; nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// "127.0.0.1:80", "[::1]:80" -> address; nullopt when malformed or port > 65535.
std::optional<address> parse_address(std::string_view text);

}  // namespace zcproxy
