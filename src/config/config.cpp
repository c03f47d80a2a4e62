// Config loading: YAML text -> validated zcproxy::config.
// The whole document is checked before anything is returned, and every problem is collected so
// an operator fixes a config in one round instead of one error per restart.
#include "zcproxy/config.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <thread>
#include <utility>
#include <variant>

namespace zcproxy {

namespace detail {
namespace {

// An address, or the reason the text is not one (the config checker shows the reason; the public
// parse_address only needs yes/no).
using address_or_reason = std::variant<address, std::string>;

std::optional<std::uint64_t> parse_digits(std::string_view text) {
  // from_chars alone would accept a leading '-' for some types and stop at the first junk byte;
  // demand digits and nothing else.
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;  // overflow
  return value;
}

// Splits "123 unit" into the number and the unit; spaces between them are tolerated.
std::optional<std::pair<std::uint64_t, std::string_view>> split_number(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  auto number = parse_digits(text.substr(0, digits));
  if (!number) return std::nullopt;
  auto unit = text.substr(digits);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  return std::pair{*number, unit};
}

// sockaddr_un's sun_path holds 108 bytes with the terminating NUL.
constexpr std::size_t max_unix_path = 107;

address_or_reason parse_address_verbose(std::string_view text) {
  if (text.empty()) return std::string("empty address");
  address result;
  if (text.starts_with("unix:")) {
    result.local = true;
    result.path = text.substr(5);
    if (result.path.empty()) return std::string("missing the socket's path after \"unix:\"");
    if (result.path.front() != '/')
      return std::string("a Unix socket path must be absolute, e.g. unix:/run/app.sock");
    if (result.path.size() > max_unix_path)
      return "a Unix socket path has at most " + std::to_string(max_unix_path) + " bytes, got " +
             std::to_string(result.path.size());
    if (result.path.find('\0') != std::string::npos)
      return std::string("a Unix socket path cannot contain a NUL byte");
    return result;
  }
  std::string_view host;
  std::string_view port;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos) return std::string("missing ']' after the IPv6 address");
    if (close + 1 >= text.size() || text[close + 1] != ':')
      return std::string("missing ':port' after the IPv6 address");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    result.v6 = true;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::string("missing ':port'");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    // Without brackets the last ':' of an IPv6 address would be taken for the port separator.
    if (host.find(':') != std::string_view::npos)
      return std::string("an IPv6 address must be in brackets, e.g. [::1]:9000");
  }

  std::string host_str(host);
  unsigned char raw[sizeof(in6_addr)];
  int family = result.v6 ? AF_INET6 : AF_INET;
  if (host.empty() || ::inet_pton(family, host_str.c_str(), raw) != 1) {
    if (result.v6) return "\"" + host_str + "\" is not an IPv6 address";
    return "\"" + host_str + "\" is not an IP address (host names are not accepted)";
  }
  // Store the canonical spelling so "::0001" and "::1" compare equal (duplicate-bind check).
  // inet_ntop cannot fail here (valid family, big enough buffer); keep the text if it ever does.
  char canonical[INET6_ADDRSTRLEN];
  bool printed = ::inet_ntop(family, raw, canonical, sizeof canonical) != nullptr;
  result.ip = printed ? canonical : host_str;

  auto port_value = parse_digits(port);
  if (!port_value) return "port \"" + std::string(port) + "\" is not a number";
  if (*port_value > 65535) return "port " + std::string(port) + " is out of range 0..65535";
  result.port = static_cast<std::uint16_t>(*port_value);
  return result;
}

constexpr std::string_view address_hint =
    "an IP literal and port, e.g. 127.0.0.1:9000 or [::1]:9000, or unix:/path/to.sock";
constexpr std::string_view size_hint =
    "a size in bytes, e.g. 65536, 64KiB or 1MiB (units B, KiB, MiB, GiB, KB, MB, GB)";
constexpr std::string_view duration_hint =
    "a duration with a unit, e.g. 500ms, 10s, 1m or 1h (units ms, s, m, h)";
constexpr std::string_view endpoint_hint =
    "an IP literal and port, e.g. 127.0.0.1:9000 or [::1]:9000, unix:/path/to.sock, or a map "
    "{address, weight}";
constexpr std::string_view endpoints_hint =
    "a non-empty sequence of endpoints, each an IP literal and port or a map {address, weight}, "
    "e.g. [\"127.0.0.1:9000\", {address: \"[::1]:9000\", weight: 2}]";

std::string join(const std::vector<std::string_view>& words) {
  std::string out;
  for (auto w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

std::string quoted(std::string_view s) {
  return "\"" + std::string(s) + "\"";
}

// The way a config would write `d`: "1h", "90s", "1500ms".
std::string format_duration(std::chrono::milliseconds d) {
  static constexpr std::pair<std::string_view, std::chrono::milliseconds::rep> units[] = {
      {"h", 60 * 60 * 1000}, {"m", 60 * 1000}, {"s", 1000}};
  for (auto [name, factor] : units)
    if (d.count() != 0 && d.count() % factor == 0)
      return std::to_string(d.count() / factor) + std::string(name);
  return std::to_string(d.count()) + "ms";
}

std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string element(const std::string& path, std::size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return quoted(node.Scalar());
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "an empty value";
}

// One key/value of a YAML map, with the key's node kept for its position.
struct entry {
  std::string key;
  YAML::Node key_node;
  YAML::Node value;
};

// Walks a config document, collecting every problem with its position.
class checker {
 public:
  explicit checker(std::string source) : source_(std::move(source)) {}

  config check(const YAML::Node& root);

  void fail_at(const YAML::Mark& mark, const std::string& key, const std::string& what) {
    // A null mark happens for nodes the parser synthesised; point at the start of the file.
    int line = mark.is_null() ? 1 : mark.line + 1;
    int column = mark.is_null() ? 1 : mark.column + 1;
    errors_.push_back({line, column,
                       source_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " +
                           key + ": " + what});
  }

  std::vector<std::string> take_errors() {
    // Cross-checks (e.g. listener -> upstream) run after the walk; sort so the report reads in
    // file order regardless of which pass found a problem.
    std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    std::vector<std::string> out;
    for (auto& e : errors_) out.push_back(std::move(e.text));
    errors_.clear();
    return out;
  }

 private:
  struct located_error {
    int line;
    int column;
    std::string text;
  };

  // Where to point for a value: a null value (`key:` with nothing after it) carries the mark of
  // whatever follows it, so the key's own position is the useful one.
  static YAML::Mark mark_of(const entry& e) {
    return e.value.IsNull() ? e.key_node.Mark() : e.value.Mark();
  }

  void fail(const entry& e, const std::string& key, const std::string& what) {
    fail_at(mark_of(e), key, what);
  }

  // Map entries in document order. Reports non-scalar keys, unknown keys (when `allowed` is not
  // empty) and duplicate keys: yaml-cpp keeps both copies of a repeated key and lookups would
  // silently see only the first.
  std::vector<entry> entries(const YAML::Node& map, const std::string& path,
                             const std::vector<std::string_view>& allowed,
                             std::string_view what = "key") {
    std::vector<entry> out;
    std::map<std::string, int> first_line;
    // By value: yaml-cpp's iterator hands out a temporary pair, so a reference would dangle.
    for (auto kv : map) {
      YAML::Node key_node = kv.first;
      if (!key_node.IsScalar()) {
        fail_at(key_node.Mark(), path.empty() ? "(top level)" : path,
                "expected a plain string key, got " + describe(key_node));
        continue;
      }
      std::string key = key_node.Scalar();
      std::string key_path = child(path, key);
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        fail_at(key_node.Mark(), key_path, "unknown key; expected one of: " + join(allowed));
        continue;
      }
      auto [it_first, inserted] = first_line.emplace(key, key_node.Mark().line + 1);
      if (!inserted) {
        fail_at(key_node.Mark(), key_path,
                "duplicate " + std::string(what) + " " + quoted(key) + " (first given at line " +
                    std::to_string(it_first->second) + "); expected each " + std::string(what) +
                    " once");
        continue;
      }
      out.push_back({std::move(key), key_node, kv.second});
    }
    return out;
  }

  static const entry* find(const std::vector<entry>& list, std::string_view key) {
    for (const auto& e : list)
      if (e.key == key) return &e;
    return nullptr;
  }

  // A missing required key has no node of its own; point at the map that should hold it.
  void require(const std::vector<entry>& list, const YAML::Node& map, const std::string& path,
               std::string_view key, std::string_view expected) {
    if (find(list, key) == nullptr)
      fail_at(map.Mark(), child(path, key),
              "required key is missing; expected " + std::string(expected));
  }

  bool expect_map(const entry& e, const std::string& path, std::string_view expected) {
    if (e.value.IsMap()) return true;
    fail(e, path, "expected " + std::string(expected) + ", got " + describe(e.value));
    return false;
  }

  std::optional<std::string> scalar(const entry& e, const std::string& path,
                                    std::string_view expected) {
    if (e.value.IsScalar()) return e.value.Scalar();
    fail(e, path, "expected " + std::string(expected) + ", got " + describe(e.value));
    return std::nullopt;
  }

  // A key that takes one of a few words; `out` gets the value paired with the word given.
  template <typename T>
  void one_of(const entry& e, const std::string& path,
              std::initializer_list<std::pair<std::string_view, T>> words, T& out) {
    std::vector<std::string_view> names;
    for (const auto& w : words) names.push_back(w.first);
    const std::string expected = "one of: " + join(names);
    auto text = scalar(e, path, expected);
    if (!text) return;
    for (const auto& [word, value] : words)
      if (*text == word) {
        out = value;
        return;
      }
    fail(e, path, "expected " + expected + ", got " + quoted(*text));
  }

  template <typename T>
  void integer(const entry& e, const std::string& path, std::uint64_t min, std::uint64_t max,
               std::string_view note, T& out) {
    std::string expected =
        "an integer from " + std::to_string(min) + " to " + std::to_string(max) + std::string(note);
    auto text = scalar(e, path, expected);
    if (!text) return;
    auto value = parse_digits(*text);
    if (!value || *value < min || *value > max) {
      fail(e, path, "expected " + expected + ", got " + quoted(*text));
      return;
    }
    out = static_cast<T>(*value);
  }

  void size(const entry& e, const std::string& path, std::size_t min, std::size_t max,
            std::string_view range, std::size_t& out) {
    auto text = scalar(e, path, size_hint);
    if (!text) return;
    auto value = parse_size(*text);
    if (!value) {
      fail(e, path, "expected " + std::string(size_hint) + ", got " + quoted(*text));
    } else if (*value < min || *value > max) {
      fail(e, path, "expected a size from " + std::string(range) + ", got " + quoted(*text));
    } else {
      out = *value;
    }
  }

  // True when `out` was set.
  bool duration(const entry& e, const std::string& path, std::chrono::milliseconds min,
                std::chrono::milliseconds max, std::string_view range,
                std::chrono::milliseconds& out) {
    auto text = scalar(e, path, duration_hint);
    if (!text) return false;
    auto value = parse_duration(*text);
    if (!value) {
      fail(e, path, "expected " + std::string(duration_hint) + ", got " + quoted(*text));
    } else if (*value < min || *value > max) {
      fail(e, path, "expected a duration from " + std::string(range) + ", got " + quoted(*text));
    } else {
      out = *value;
      return true;
    }
    return false;
  }

  std::optional<address> addr(const entry& e, const YAML::Node& node, const std::string& path,
                              bool allow_port_zero) {
    // `node` differs from e.value for sequence elements (endpoints).
    auto at = node.IsNull() ? mark_of(e) : node.Mark();
    if (!node.IsScalar()) {
      fail_at(at, path, "expected " + std::string(address_hint) + ", got " + describe(node));
      return std::nullopt;
    }
    auto parsed = parse_address_verbose(node.Scalar());
    if (auto* reason = std::get_if<std::string>(&parsed)) {
      fail_at(at, path,
              "expected " + std::string(address_hint) + ", got " + quoted(node.Scalar()) + ": " +
                  *reason);
      return std::nullopt;
    }
    auto& a = std::get<address>(parsed);
    if (a.port == 0 && !a.local && !allow_port_zero) {
      fail_at(at, path,
              "expected a port from 1 to 65535, got " + quoted(node.Scalar()) +
                  " (port 0 is only meaningful for a listener)");
      return std::nullopt;
    }
    return a;
  }

  void boolean(const entry& e, const std::string& path, bool& out) {
    bool value = false;
    if (!e.value.IsScalar() || !YAML::convert<bool>::decode(e.value, value))
      fail(e, path, "expected true or false, got " + describe(e.value));
    else
      out = value;
  }

  // rate_limit: { upload: 10MiB/s, download: 50MiB/s }: a size per second, each optional.
  void check_rate_limit(const entry& e, const std::string& path, listener_config& out) {
    static const std::vector<std::string_view> keys{"upload", "download"};
    if (!expect_map(e, path, "a map with keys " + join(keys))) return;
    for (const auto& item : entries(e.value, path, keys)) {
      const auto item_path = child(path, item.key);
      constexpr std::string_view expected = "a rate such as 10MiB/s (a size per second, 0 = none)";
      auto text = scalar(item, item_path, expected);
      if (!text) continue;
      std::string_view t = *text;
      std::optional<std::size_t> rate;
      if (t == "0") rate = 0;
      else if (t.size() > 2 && t.substr(t.size() - 2) == "/s") rate = parse_size(t.substr(0, t.size() - 2));
      if (!rate || *rate > (std::uint64_t{1} << 40)) {
        fail(item, item_path, "expected " + std::string(expected) + ", got " + quoted(*text));
        continue;
      }
      (item.key == "upload" ? out.upload_rate : out.download_rate) = *rate;
    }
  }

  // A sequence of address blocks: "10.0.0.0/8", "2001:db8::/32", "192.168.1.7".
  void check_cidrs(const entry& e, const std::string& path, std::vector<cidr>& out) {
    constexpr std::string_view expected =
        "a sequence of address blocks, e.g. [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\"]";
    if (!e.value.IsSequence()) {
      fail(e, path, "expected " + std::string(expected) + ", got " + describe(e.value));
      return;
    }
    for (std::size_t i = 0; i < e.value.size(); ++i) {
      entry one{"", e.key_node, e.value[i]};
      const auto item_path = element(path, i);
      auto text = scalar(one, item_path, "an address block such as \"10.0.0.0/8\"");
      if (!text) continue;
      std::string why;
      if (auto c = parse_cidr(*text, &why))
        out.push_back(*c);
      else
        fail(one, item_path, "expected an address block such as \"10.0.0.0/8\": " + why);
    }
  }

  std::optional<std::string> name(const entry& e, const std::string& path) {
    auto text = scalar(e, path, "a non-empty name");
    if (text && text->empty()) {
      fail(e, path, "expected a non-empty name, got \"\"");
      return std::nullopt;
    }
    return text;
  }

  // connect_timeout, idle_timeout and max_connection_duration, which a listener and an upstream
  // both take; `item` is one of them.
  void check_timeout(const entry& item, const std::string& path, timeouts_config& out) {
    using std::chrono::hours;
    using std::chrono::milliseconds;
    milliseconds value{};
    if (item.key == "connect_timeout") {
      if (duration(item, path, milliseconds(1), hours(1), "1ms to 1h", value)) out.connect = value;
    } else if (item.key == "idle_timeout") {
      if (duration(item, path, milliseconds(0), hours(7 * 24),
                   "0s to 168h (7 days; 0s = no idle timeout)", value))
        out.idle = value;
    } else if (item.key == "max_connection_duration") {
      if (duration(item, path, milliseconds(0), hours(30 * 24),
                   "0s to 720h (30 days; 0s = no limit)", value))
        out.max_duration = value;
    }
  }

  void check_upstream_name(const entry& e, const std::string& path, const std::string& name,
                           const config& out) {
    if (out.find_upstream(name) != nullptr || out.upstreams.empty()) return;
    std::vector<std::string_view> known;
    for (const auto& u : out.upstreams) known.push_back(u.name);
    fail(e, path, "no upstream named " + quoted(name) + "; expected one of: " + join(known));
  }

  // routes: [{sni: "api.example.com", upstream: api}, {sni: "*.example.com", upstream: web},
  //          {default: fallback}]
  void check_routes(const entry& e, const std::string& path, const config& cfg,
                    sni_routes& out) {
    constexpr std::string_view expected =
        "a non-empty sequence of {sni: NAME, upstream: UPSTREAM} and at most one "
        "{default: UPSTREAM}";
    if (!e.value.IsSequence() || e.value.size() == 0) {
      fail(e, path,
           "expected " + std::string(expected) + ", got " +
               (e.value.IsSequence() ? std::string("an empty sequence") : describe(e.value)));
      return;
    }
    for (std::size_t i = 0; i < e.value.size(); ++i) {
      entry self{"", e.key_node, e.value[i]};
      const auto item_path = element(path, i);
      if (!expect_map(self, item_path, "{sni: NAME, upstream: UPSTREAM} or {default: UPSTREAM}"))
        continue;
      auto items = entries(self.value, item_path, {"sni", "upstream", "default"});
      const entry* fallback = find(items, "default");
      if (fallback) {
        if (items.size() != 1) {
          fail(self, item_path, "expected {default: UPSTREAM} alone, without sni or upstream");
          continue;
        }
        auto n = name(*fallback, child(item_path, "default"));
        if (!n) continue;
        if (!out.fallback.empty()) {
          fail(*fallback, child(item_path, "default"), "expected at most one default route");
          continue;
        }
        out.fallback = *n;
        check_upstream_name(*fallback, child(item_path, "default"), *n, cfg);
        continue;
      }
      require(items, self.value, item_path, "sni", "a server name such as \"api.example.com\"");
      require(items, self.value, item_path, "upstream", "the name of an entry in upstreams");
      const entry* pattern = find(items, "sni");
      const entry* target = find(items, "upstream");
      if (!pattern || !target) continue;
      auto p = scalar(*pattern, child(item_path, "sni"), "a server name");
      auto n = name(*target, child(item_path, "upstream"));
      if (!p || !n) continue;
      std::string lower = *p;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      const bool wildcard = lower.starts_with("*.");
      const auto star = lower.find('*', wildcard ? 1 : 0);
      if (lower.empty() || lower == "*." || star != std::string::npos ||
          lower.find_first_of(" /:") != std::string::npos) {
        fail(*pattern, child(item_path, "sni"),
             "expected a server name (\"api.example.com\") or a wildcard (\"*.example.com\"), "
             "got " + quoted(*p));
        continue;
      }
      if (std::find(out.patterns.begin(), out.patterns.end(), lower) != out.patterns.end()) {
        fail(*pattern, child(item_path, "sni"),
             "duplicate server name " + quoted(*p) + "; expected each name once");
        continue;
      }
      check_upstream_name(*target, child(item_path, "upstream"), *n, cfg);
      out.patterns.push_back(std::move(lower));
      out.upstreams.push_back(*n);
    }
  }

  void check_log(const entry& e, log_config& out);
  void check_access_file(const entry& e, const std::string& path, std::string& out);
  void check_run_as(const entry* user, const entry* group, std::optional<run_as_config>& out);
  void check_fallback(const entry& e, const std::string& path, listener_config& out);
  void check_mirror(const entry& e, const std::string& path, const config& cfg,
                    listener_config& out);
  void check_admin(const entry& e, admin_config& out);
  void check_relay(const entry& e, relay_config& out);
  void check_upstreams(const entry& e, config& out);
  void check_listeners(const entry& e, config& out);
  void check_upstream(const entry& e, const std::string& path, upstream_config& out);
  void check_endpoints(const entry& e, const std::string& path, std::vector<endpoint_config>& out);
  void check_health_check(const entry& e, const std::string& path, health_check_config& out);

  std::string source_;
  std::vector<located_error> errors_;
};

void checker::check_log(const entry& e, log_config& out) {
  static const std::vector<std::string_view> keys{"level", "access_log", "access_format",
                                                  "access_file"};
  static const std::vector<std::string_view> levels{"trace", "debug",    "info", "warn",
                                                    "error", "critical", "off"};
  if (!expect_map(e, "log", "a map with keys " + join(keys))) return;
  for (const auto& item : entries(e.value, "log", keys)) {
    auto path = child("log", item.key);
    if (item.key == "level") {
      auto expected = "one of: " + join(levels);
      if (auto text = scalar(item, path, expected)) {
        if (std::find(levels.begin(), levels.end(), *text) == levels.end())
          fail(item, path, "expected " + expected + ", got " + quoted(*text));
        else
          out.level = *text;
      }
    } else if (item.key == "access_log") {
      bool value = false;
      if (!item.value.IsScalar() || !YAML::convert<bool>::decode(item.value, value))
        fail(item, path, "expected true or false, got " + describe(item.value));
      else
        out.access_log = value;
    } else if (item.key == "access_format") {
      one_of(item, path, {{"text", access_log_format::text}, {"json", access_log_format::json}},
             out.access_format);
    } else if (item.key == "access_file") {
      check_access_file(item, path, out.access_file);
    }
  }
}

// The file itself is opened at start-up (server::start); here only what a typo would break: an
// absolute path (a daemon's working directory is nobody's choice) whose directory exists.
void checker::check_access_file(const entry& e, const std::string& path, std::string& out) {
  constexpr std::string_view expected =
      "an absolute file path in an existing directory, e.g. /var/log/zcproxy/access.log";
  auto text = scalar(e, path, expected);
  if (!text) return;
  const std::string& file = *text;
  const auto slash = file.rfind('/');
  std::string why;
  struct stat st {};
  if (file.empty() || file.front() != '/') {
    why = "not an absolute path";
  } else if (file.find('\0') != std::string::npos) {
    why = "a path cannot contain a NUL byte";
  } else if (slash + 1 == file.size()) {
    why = "names a directory, not a file";
  } else if (const std::string dir = slash == 0 ? "/" : file.substr(0, slash);
             ::stat(dir.c_str(), &st) != 0) {
    why = "directory " + dir + ": " + std::strerror(errno);
  } else if (!S_ISDIR(st.st_mode)) {
    why = dir + " is not a directory";
  } else if (::stat(file.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    why = "it is a directory";
  }
  if (!why.empty())
    fail(e, path, "expected " + std::string(expected) + ", got " + quoted(file) + ": " + why);
  else
    out = file;
}

void checker::check_run_as(const entry* user, const entry* group,
                           std::optional<run_as_config>& out) {
  if (!user) {
    if (group) fail(*group, "group", "expected user: as well (group alone is not switched to)");
    return;
  }
  run_as_config r;
  const auto name = scalar(*user, "user", "a user name or numeric uid");
  if (!name) return;
  r.user = *name;
  // getpw*_r: the config is also loaded on reload, beside running threads. A number past uid_t
  // would wrap round to another user (2^32 is root): refused before any lookup.
  auto uid = parse_digits(*name);
  if (uid && *uid >= std::numeric_limits<uid_t>::max()) {
    fail(*user, "user", "expected a uid below " +
                            std::to_string(std::numeric_limits<uid_t>::max()) + ", got " + *name);
    return;
  }
  std::vector<char> buffer(16384);
  passwd pw{};
  passwd* found = nullptr;
  int rc;
  while ((rc = uid ? ::getpwuid_r(static_cast<uid_t>(*uid), &pw, buffer.data(), buffer.size(),
                                  &found)
                   : ::getpwnam_r(name->c_str(), &pw, buffer.data(), buffer.size(), &found)) ==
             ERANGE &&
         buffer.size() < (1u << 24))
    buffer.resize(buffer.size() * 2);  // a large entry (LDAP): a larger buffer
  if (found) {
    r.uid = pw.pw_uid;
    r.gid = pw.pw_gid;
  } else if (uid) {
    r.uid = static_cast<uid_t>(*uid);  // a numeric uid need not have a passwd entry
    if (!group) {
      fail(*user, "user", "expected group: too, since uid " + *name + " has no passwd entry "
                          "to take a primary group from");
      return;
    }
  } else {
    fail(*user, "user", "expected a user of this system, got " + quoted(*name) +
                            (rc != 0 ? std::string(": ") + std::strerror(rc) : ": no such user"));
    return;
  }
  if (group) {
    const auto gname = scalar(*group, "group", "a group name or numeric gid");
    if (!gname) return;
    r.group = *gname;
    const auto gid = parse_digits(*gname);
    if (gid && *gid >= std::numeric_limits<gid_t>::max()) {
      fail(*group, "group", "expected a gid below " +
                                std::to_string(std::numeric_limits<gid_t>::max()) + ", got " +
                                *gname);
      return;
    }
    std::vector<char> gbuffer(16384);
    ::group gr{};
    ::group* gfound = nullptr;
    int grc;
    while ((grc = gid ? ::getgrgid_r(static_cast<gid_t>(*gid), &gr, gbuffer.data(),
                                     gbuffer.size(), &gfound)
                      : ::getgrnam_r(gname->c_str(), &gr, gbuffer.data(), gbuffer.size(),
                                     &gfound)) == ERANGE &&
           gbuffer.size() < (1u << 24))
      gbuffer.resize(gbuffer.size() * 2);  // a group with many members: a larger buffer
    if (gfound)
      r.gid = gr.gr_gid;
    else if (gid)
      r.gid = static_cast<gid_t>(*gid);
    else {
      fail(*group, "group", "expected a group of this system, got " + quoted(*gname) +
                                (grc != 0 ? std::string(": ") + std::strerror(grc)
                                          : ": no such group"));
      return;
    }
  }
  out = r;
}

// mirror: { upstream: NAME, sample: 0.1 }
void checker::check_mirror(const entry& e, const std::string& path, const config& cfg,
                           listener_config& out) {
  static const std::vector<std::string_view> keys{"upstream", "sample", "max_lag"};
  if (!expect_map(e, path, "a map with keys " + join(keys))) return;
  auto items = entries(e.value, path, keys);
  require(items, e.value, path, "upstream", "the name of the upstream that gets the copy");
  for (const auto& item : items) {
    const auto item_path = child(path, item.key);
    if (item.key == "upstream") {
      if (auto n = name(item, item_path)) {
        check_upstream_name(item, item_path, *n, cfg);
        out.mirror_upstream = *n;
      }
    } else if (item.key == "max_lag") {
      size(item, item_path, 64 << 10, std::size_t(1) << 30, "64KiB to 1GiB", out.mirror_max_lag);
    } else if (item.key == "sample") {
      constexpr std::string_view expected = "a share of connections from 0 to 1, e.g. 0.1";
      auto text = scalar(item, item_path, expected);
      if (!text) continue;
      double v = -1;
      const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
      if (ec != std::errc{} || end != text->data() + text->size() || !(v >= 0 && v <= 1))
        fail(item, item_path, "expected " + std::string(expected) + ", got " + quoted(*text));
      else
        out.mirror_sample = v;
    }
  }
}

// Read whole now, into a sealed memfd: what clients get is the file as loaded, whatever happens
// to it on disk until the next reload.
void checker::check_fallback(const entry& e, const std::string& path, listener_config& out) {
  constexpr std::string_view expected =
      "a file of at most 1 MiB (absolute, or relative to the config file's directory)";
  auto text = scalar(e, path, expected);
  if (!text) return;
  std::string file = *text;
  if (!file.empty() && file.front() != '/' && source_.find('/') != std::string::npos)
    file = source_.substr(0, source_.rfind('/') + 1) + file;
  auto bad = [&](const std::string& why) {
    fail(e, path, "expected " + std::string(expected) + ", got " + quoted(*text) + ": " + why);
  };
  if (text->empty() || file.find('\0') != std::string::npos) return bad("not a file name");
  // A regular file only: opening a FIFO would block the load (and a reload) for a writer.
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return bad(file + ": " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return bad(file + ": Is a directory");
  if (!S_ISREG(st.st_mode)) return bad(file + " is not a regular file");
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) return bad(file + ": " + std::strerror(errno));
  std::string bytes;
  char buffer[8192];
  std::size_t n;
  while (bytes.size() <= max_fallback_bytes && (n = std::fread(buffer, 1, sizeof buffer, f.get())) > 0)
    bytes.append(buffer, n);
  if (std::ferror(f.get())) return bad(file + ": " + std::strerror(errno));  // EISDIR
  if (bytes.size() > max_fallback_bytes) return bad(file + " is larger than 1 MiB");
  const int fd = ::memfd_create("zcproxy-fallback", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return bad(std::string("memfd_create: ") + std::strerror(errno));
  auto body = std::make_shared<const fallback_body>(fd, bytes.size());
  for (std::size_t at = 0; at < bytes.size();) {
    const ssize_t w = ::write(fd, bytes.data() + at, bytes.size() - at);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return bad(std::string("memfd write: ") + std::strerror(errno));
    at += static_cast<std::size_t>(w);
  }
  // Sealed: nothing can change the bytes, not even this process by mistake.
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
    return bad(std::string("sealing its copy: ") + std::strerror(errno));
  out.fallback_path = file;
  out.fallback = std::move(body);
}

void checker::check_admin(const entry& e, admin_config& out) {
  static const std::vector<std::string_view> keys{"bind", "allow", "deny", "reload"};
  // `admin:` or `admin: {}` is enough: every key has a default.
  if (!e.value.IsNull() && !expect_map(e, "admin", "a map with keys " + join(keys))) return;
  auto items = e.value.IsMap() ? entries(e.value, "admin", keys) : std::vector<entry>{};
  out.enabled = true;
  out.bind = *parse_address("127.0.0.1:9901");  // loopback only unless said otherwise
  for (const auto& item : items) {
    const auto path = child("admin", item.key);
    if (item.key == "bind") {
      if (auto a = addr(item, item.value, path, true)) {
        if (a->local)
          fail(item, path, "expected an IP literal and port, e.g. 127.0.0.1:9901 (HTTP over a "
                           "Unix socket is not served)");
        else
          out.bind = *a;
      }
    } else if (item.key == "allow" || item.key == "deny") {
      check_cidrs(item, path, item.key == "allow" ? out.allow : out.deny);
    } else if (item.key == "reload") {
      boolean(item, path, out.reload);
    }
  }
}

void checker::check_relay(const entry& e, relay_config& out) {
  static const std::vector<std::string_view> keys{"engine", "pipe_size", "max_pipes",
                                                  "buffer_size"};
  if (!expect_map(e, "relay", "a map with keys " + join(keys))) return;
  for (const auto& item : entries(e.value, "relay", keys)) {
    auto path = child("relay", item.key);
    if (item.key == "engine") {
      one_of(item, path,
             {{"auto", engine_mode::automatic},
              {"splice", engine_mode::splice},
              {"copy", engine_mode::copy},
              {"adaptive", engine_mode::adaptive}},
             out.engine);
    } else if (item.key == "pipe_size") {
      size(item, path, std::size_t{4} << 10, std::size_t{1} << 30, "4KiB to 1GiB", out.pipe_size);
    } else if (item.key == "buffer_size") {
      size(item, path, std::size_t{1} << 10, std::size_t{64} << 20, "1KiB to 64MiB",
           out.buffer_size);
    } else if (item.key == "max_pipes") {
      integer(item, path, 0, 1'000'000, " (0 = never splice, always copy)", out.max_pipes);
    }
  }
}

void checker::check_endpoints(const entry& e, const std::string& path,
                              std::vector<endpoint_config>& out) {
  static const std::vector<std::string_view> keys{"address", "weight"};
  if (!e.value.IsSequence()) {
    fail(e, path, "expected " + std::string(endpoints_hint) + ", got " + describe(e.value));
    return;
  }
  if (e.value.size() == 0) {
    fail(e, path, "expected " + std::string(endpoints_hint) + ", got an empty sequence");
    return;
  }
  std::vector<std::string> paths;  // where each of `out` was given, for duplicates
  for (std::size_t i = 0; i < e.value.size(); ++i) {
    auto element_path = element(path, i);
    YAML::Node node = e.value[i];
    endpoint_config endpoint;
    // The address's own node and path: a duplicate is reported where its address is written.
    YAML::Node address_node = node;
    auto address_path = element_path;
    std::optional<address> at;
    if (node.IsMap()) {
      auto fields = entries(node, element_path, keys);
      require(fields, node, element_path, "address", address_hint);
      for (const auto& field : fields) {
        auto field_path = child(element_path, field.key);
        if (field.key == "address") {
          address_node = field.value;
          address_path = field_path;
          at = addr(field, field.value, field_path, false);
        } else if (field.key == "weight") {
          integer(field, field_path, 1, 256, "", endpoint.weight);
        }
      }
    } else if (node.IsSequence()) {
      fail_at(node.Mark(), element_path,
              "expected " + std::string(endpoint_hint) + ", got " + describe(node));
    } else {
      at = addr(e, node, element_path, false);
    }
    if (!at) continue;
    endpoint.at = *at;
    auto same = std::find_if(out.begin(), out.end(), [&](const auto& o) { return o.at == *at; });
    if (same != out.end()) {
      fail_at(address_node.Mark(), address_path,
              "duplicate endpoint " + at->to_string() + " (also " +
                  paths[static_cast<std::size_t>(same - out.begin())] +
                  "); expected each address once per upstream (a weight gives an endpoint a "
                  "bigger share)");
      continue;
    }
    out.push_back(endpoint);
    paths.push_back(address_path);
  }
}

void checker::check_health_check(const entry& e, const std::string& path,
                                 health_check_config& out) {
  static const std::vector<std::string_view> keys{"interval", "timeout", "rise",      "fall",
                                                  "send",     "expect",  "send_proxy"};
  using std::chrono::hours;
  using std::chrono::milliseconds;
  auto expected = "a map with keys " + join(keys) + ", or true or false";
  // `true` checks with every default, `false` is the same as leaving the key out.
  if (e.value.IsScalar()) {
    bool enabled = false;
    if (!YAML::convert<bool>::decode(e.value, enabled))
      fail(e, path, "expected " + expected + ", got " + describe(e.value));
    else
      out.enabled = enabled;
    return;
  }
  if (!expect_map(e, path, expected)) return;
  out.enabled = true;
  bool interval_ok = true;
  const entry* timeout_given = nullptr;  // set only when it parsed; points into `items`
  auto items = entries(e.value, path, keys);
  for (const auto& item : items) {
    auto item_path = child(path, item.key);
    if (item.key == "interval") {
      interval_ok =
          duration(item, item_path, milliseconds(10), hours(1), "10ms to 1h", out.interval);
    } else if (item.key == "timeout") {
      if (duration(item, item_path, milliseconds(1), hours(1), "1ms to 1h", out.timeout)) {
        timeout_given = &item;
      }
    } else if (item.key == "rise") {
      integer(item, item_path, 1, 100, " (successes in a row that bring an endpoint back)",
              out.rise);
    } else if (item.key == "fall") {
      integer(item, item_path, 1, 100, " (failures in a row that take an endpoint out)", out.fall);
    } else if (item.key == "send" || item.key == "expect") {
      if (auto text = scalar(item, item_path, "a string"))
        (item.key == "send" ? out.send : out.expect) = *text;
    } else if (item.key == "send_proxy") {
      boolean(item, item_path, out.send_proxy);
    }
  }
  // A check must end before the next one starts. The default timeout yields to a shorter
  // interval; one written down does not.
  if (!interval_ok) return;
  if (timeout_given == nullptr) {
    out.timeout = std::min(out.timeout, out.interval);
  } else if (out.timeout > out.interval) {
    fail(*timeout_given, child(path, "timeout"),
         "expected a duration from 1ms to the interval (" + format_duration(out.interval) +
             "), got " + quoted(timeout_given->value.Scalar()));
  }
}

void checker::check_upstream(const entry& e, const std::string& path, upstream_config& out) {
  static const std::vector<std::string_view> keys{
      "endpoints",       "balance",      "health_check",
      "max_fails",       "fail_timeout", "max_connect_attempts",
      "connect_timeout", "idle_timeout", "max_connection_duration",
      "send_proxy"};
  if (!expect_map(e, path, "a map with keys " + join(keys))) return;
  auto items = entries(e.value, path, keys);
  require(items, e.value, path, "endpoints", endpoints_hint);
  for (const auto& item : items) {
    auto item_path = child(path, item.key);
    if (item.key == "endpoints") {
      check_endpoints(item, item_path, out.endpoints);
    } else if (item.key == "send_proxy") {
      one_of(item, item_path,
             {{"off", proxy_protocol_version::off},
              {"v1", proxy_protocol_version::v1},
              {"v2", proxy_protocol_version::v2}},
             out.send_proxy);
    } else if (item.key == "balance") {
      static constexpr balance_policy policies[] = {
          balance_policy::round_robin, balance_policy::least_conn, balance_policy::random,
          balance_policy::source_hash};
      std::vector<std::string_view> names;
      for (auto p : policies) names.push_back(to_string(p));
      auto expected = "one of: " + join(names);
      if (auto text = scalar(item, item_path, expected)) {
        auto it = std::find(names.begin(), names.end(), *text);
        if (it == names.end())
          fail(item, item_path, "expected " + expected + ", got " + quoted(*text));
        else
          out.balance = policies[it - names.begin()];
      }
    } else if (item.key == "health_check") {
      check_health_check(item, item_path, out.health_check);
    } else if (item.key == "max_fails") {
      integer(item, item_path, 0, 1000, " (0 = no passive checks)", out.max_fails);
    } else if (item.key == "fail_timeout") {
      duration(item, item_path, std::chrono::milliseconds(1), std::chrono::hours(24), "1ms to 24h",
               out.fail_timeout);
    } else if (item.key == "max_connect_attempts") {
      integer(item, item_path, 0, 1000, " (0 = every endpoint once)", out.max_connect_attempts);
    } else {
      check_timeout(item, item_path, out.timeouts);
    }
  }
}

void checker::check_upstreams(const entry& e, config& out) {
  constexpr std::string_view expected = "a non-empty map of upstream name to {endpoints, ...}";
  if (!expect_map(e, "upstreams", expected)) return;
  if (e.value.size() == 0) {
    fail(e, "upstreams", "expected " + std::string(expected) + ", got an empty map");
    return;
  }
  for (const auto& item : entries(e.value, "upstreams", {}, "upstream name")) {
    auto path = child("upstreams", item.key);
    if (item.key.empty()) {
      fail_at(item.key_node.Mark(), path, "expected a non-empty upstream name");
      continue;
    }
    upstream_config upstream;
    upstream.name = item.key;
    check_upstream(item, path, upstream);
    out.upstreams.push_back(std::move(upstream));
  }
}

void checker::check_listeners(const entry& e, config& out) {
  static const std::vector<std::string_view> keys{"name",
                                                  "bind",
                                                  "upstream",
                                                  "connect_timeout",
                                                  "idle_timeout",
                                                  "max_connection_duration",
                                                  "allow",
                                                  "deny",
                                                  "max_connections",
                                                  "max_connections_per_ip",
                                                  "accept_proxy",
                                                  "proxy_timeout",
                                                  "rate_limit",
                                                  "routes",
                                                  "sni_timeout",
                                                  "non_tls",
                                                  "fallback_response",
                                                  "mirror"};
  constexpr std::string_view expected = "a non-empty sequence of listeners {name, bind, upstream}";
  if (!e.value.IsSequence()) {
    fail(e, "listeners", "expected " + std::string(expected) + ", got " + describe(e.value));
    return;
  }
  if (e.value.size() == 0) {
    fail(e, "listeners", "expected " + std::string(expected) + ", got an empty sequence");
    return;
  }
  struct seen {
    std::string path;
    std::string name;
  };
  std::map<std::string, std::string> names;  // name -> path of the listener that has it
  std::vector<std::pair<address, seen>> binds;

  for (std::size_t i = 0; i < e.value.size(); ++i) {
    auto path = element("listeners", i);
    entry self{"", e.key_node, e.value[i]};
    if (!expect_map(self, path, "a map with keys " + join(keys))) continue;
    auto items = entries(self.value, path, keys);
    require(items, self.value, path, "name", "a non-empty name");
    require(items, self.value, path, "bind", address_hint);
    const entry* routes = find(items, "routes");
    if (!routes)
      require(items, self.value, path, "upstream",
              "the name of an entry in upstreams (or routes: by TLS server name)");
    else if (find(items, "upstream"))
      fail(*routes, child(path, "routes"),
           "expected either upstream or routes, not both (routes choose the upstream per "
           "connection)");

    listener_config listener;
    bool bind_ok = false;
    for (const auto& item : items) {
      auto item_path = child(path, item.key);
      if (item.key == "name") {
        auto n = name(item, item_path);
        if (!n) continue;
        auto [it, inserted] = names.emplace(*n, path);
        if (!inserted)
          fail(item, item_path,
               "duplicate listener name " + quoted(*n) + " (also used by " + it->second +
                   "); expected unique names");
        listener.name = *n;
      } else if (item.key == "bind") {
        auto a = addr(item, item.value, item_path, true);
        if (!a) continue;
        // Port 0 asks the kernel for a fresh port each time, so it never collides.
        for (const auto& [other, who] : binds) {
          bool same_port = a->port != 0 && other.port == a->port && other.v6 == a->v6 &&
                           !a->local && !other.local;
          bool unspecified =
              a->ip == "0.0.0.0" || a->ip == "::" || other.ip == "0.0.0.0" || other.ip == "::";
          bool same_path = a->local && other.local && a->path == other.path;
          if ((same_port && (other.ip == a->ip || unspecified)) || same_path) {
            fail(item, item_path,
                 "address " + a->to_string() + " is already bound by listener " + quoted(who.name) +
                     " (" + who.path + ": " + other.to_string() +
                     "); expected a distinct address:port for each listener");
            break;
          }
        }
        listener.bind = *a;
        bind_ok = true;
      } else if (item.key == "upstream") {
        auto n = name(item, item_path);
        if (!n) continue;
        listener.upstream = *n;
        check_upstream_name(item, item_path, *n, out);
      } else if (item.key == "routes") {
        check_routes(item, item_path, out, listener.routes);
      } else if (item.key == "sni_timeout") {
        duration(item, item_path, std::chrono::milliseconds(1), std::chrono::hours(1), "1ms to 1h",
                 listener.sni_timeout);
      } else if (item.key == "mirror") {
        check_mirror(item, item_path, out, listener);
      } else if (item.key == "fallback_response") {
        check_fallback(item, item_path, listener);
      } else if (item.key == "non_tls") {
        static const std::vector<std::string_view> choices{"close", "default"};
        auto expected_choice = "one of: " + join(choices);
        if (auto text = scalar(item, item_path, expected_choice)) {
          if (std::find(choices.begin(), choices.end(), *text) == choices.end())
            fail(item, item_path, "expected " + expected_choice + ", got " + quoted(*text));
          else
            listener.non_tls_to_default = *text == "default";
        }
      } else if (item.key == "allow" || item.key == "deny") {
        check_cidrs(item, item_path, item.key == "allow" ? listener.allow : listener.deny);
      } else if (item.key == "max_connections") {
        integer(item, item_path, 0, 10'000'000, " (0 = no limit)", listener.max_connections);
      } else if (item.key == "max_connections_per_ip") {
        integer(item, item_path, 0, 10'000'000, " (0 = no limit)",
                listener.max_connections_per_ip);
      } else if (item.key == "accept_proxy") {
        boolean(item, item_path, listener.accept_proxy);
      } else if (item.key == "rate_limit") {
        check_rate_limit(item, item_path, listener);
      } else if (item.key == "proxy_timeout") {
        duration(item, item_path, std::chrono::milliseconds(1), std::chrono::hours(1), "1ms to 1h",
                 listener.proxy_timeout);
      } else {
        check_timeout(item, item_path, listener.timeouts);
      }
    }
    for (const char* key : {"allow", "deny"})
      if (const auto* by_ip = find(items, key);
          by_ip && bind_ok && listener.bind.local && !listener.accept_proxy)
        fail(*by_ip, child(path, key),
             "applies only to an IP listener, or a Unix socket one with accept_proxy: a Unix "
             "socket's clients have no address of their own (use the socket file's permissions)");
    for (const char* key : {"sni_timeout", "non_tls"})
      if (const auto* only_routed = find(items, key); only_routed && !routes)
        fail(*only_routed, child(path, key), "applies only to a listener with routes");
    if (const auto* non_tls = find(items, "non_tls");
        non_tls && routes && listener.non_tls_to_default && listener.routes.fallback.empty())
      fail(*non_tls, child(path, "non_tls"),
           "expected close: default needs a {default: UPSTREAM} entry in routes");
    if (bind_ok) binds.push_back({listener.bind, seen{path, listener.name}});
    out.listeners.push_back(std::move(listener));
  }
}

config checker::check(const YAML::Node& root) {
  static const std::vector<std::string_view> keys{
      "threads",   "log",   "relay", "drain_timeout", "listeners", "upstreams",
      "admin",     "user",  "group", "core_dumps"};
  config out;
  if (!root.IsMap() && !root.IsNull()) {
    fail_at(root.Mark(), "(top level)",
            "expected a map with keys " + join(keys) + ", got " + describe(root));
    return out;
  }
  std::vector<entry> items;
  if (root.IsMap()) items = entries(root, "", keys);
  require(items, root, "", "listeners", "a non-empty sequence of listeners {name, bind, upstream}");
  require(items, root, "", "upstreams", "a non-empty map of upstream name to {endpoints, ...}");

  // Upstreams first so listeners can be checked against the names they refer to.
  if (const auto* e = find(items, "upstreams")) check_upstreams(*e, out);
  for (const auto& item : items) {
    if (item.key == "threads")
      integer(item, "threads", 0, 1024, " (0 = one per core)", out.threads);
    else if (item.key == "log")
      check_log(item, out.log);
    else if (item.key == "relay")
      check_relay(item, out.relay);
    else if (item.key == "drain_timeout")
      duration(item, "drain_timeout", std::chrono::milliseconds(0), std::chrono::hours(24),
               "0s to 24h", out.drain_timeout);
    else if (item.key == "listeners")
      check_listeners(item, out);
    else if (item.key == "admin")
      check_admin(item, out.admin);
    else if (item.key == "core_dumps")
      boolean(item, "core_dumps", out.core_dumps);
  }
  check_run_as(find(items, "user"), find(items, "group"), out.run_as);
  return out;
}

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) {
    if (!out.empty()) out += '\n';
    out += line;
  }
  return out;
}

// Counts documents and remembers where the second one starts, for at most two calls of
// HandleNextDocument. yaml-cpp 0.7's LoadAll loops for ever (allocating) on input such as ","
// because HandleNextDocument keeps returning true without consuming a token (yaml-cpp PR 1319,
// found by our fuzzer); a single document never needs more than two calls.
struct document_counter final : YAML::EventHandler {
  int documents = 0;
  YAML::Mark second;
  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents == 2) second = mark;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

}  // namespace
}  // namespace detail

std::string_view to_string(engine_mode m) {
  switch (m) {
    case engine_mode::automatic:
      return "auto";
    case engine_mode::splice:
      return "splice";
    case engine_mode::copy:
      return "copy";
    case engine_mode::adaptive:
      return "adaptive";
  }
  return "auto";  // unreachable for valid enumerators; keeps -Wreturn-type quiet
}

std::string_view to_string(access_log_format f) {
  return f == access_log_format::json ? "json" : "text";
}

std::string_view to_string(balance_policy p) {
  switch (p) {
    case balance_policy::round_robin:
      return "round_robin";
    case balance_policy::least_conn:
      return "least_conn";
    case balance_policy::random:
      return "random";
    case balance_policy::source_hash:
      return "source_hash";
  }
  return "?";
}

timeouts timeouts_for(const listener_config& l, const upstream_config& u) {
  timeouts t;
  auto pick = [](const auto& a, const auto& b, auto fallback) {
    return a ? *a : b ? *b : fallback;
  };
  t.connect = pick(l.timeouts.connect, u.timeouts.connect, t.connect);
  t.idle = pick(l.timeouts.idle, u.timeouts.idle, t.idle);
  t.max_duration = pick(l.timeouts.max_duration, u.timeouts.max_duration, t.max_duration);
  return t;
}

std::string address::to_string() const {
  if (local) return "unix:" + path;
  auto p = std::to_string(port);
  return v6 ? "[" + ip + "]:" + p : ip + ":" + p;
}

std::string listener_config::destination() const {
  if (!upstream.empty()) return "upstream " + upstream;
  std::string out = "routes ";
  for (std::size_t i = 0; i < routes.patterns.size(); ++i)
    out += (i ? ", " : "") + routes.patterns[i] + " -> " + routes.upstreams[i];
  if (!routes.fallback.empty())
    out += (routes.patterns.empty() ? "" : ", ") + std::string("default -> ") + routes.fallback;
  return out;
}

const upstream_config* config::find_upstream(std::string_view name) const {
  for (const auto& u : upstreams)
    if (u.name == name) return &u;
  return nullptr;
}

unsigned config::effective_threads() const {
  if (threads != 0) return threads;
  // hardware_concurrency() may return 0 when the count is unknown.
  return std::max(1u, std::thread::hardware_concurrency());
}

fallback_body::~fallback_body() {
  ::close(fd);
}

config_error::config_error(std::vector<std::string> errors)
    : std::runtime_error(detail::join_lines(errors)), errors_(std::move(errors)) {}

config load_config_string(const std::string& yaml, const std::string& source) {
  detail::checker check(source);
  YAML::Node doc;
  detail::document_counter counter;
  try {
    std::istringstream in(yaml);
    YAML::Parser parser(in);
    for (int calls = 0; calls < 2 && parser.HandleNextDocument(counter); ++calls) {
    }
    if (counter.documents > 0) doc = YAML::Load(yaml);  // the first document
  } catch (const YAML::ParserException& e) {
    check.fail_at(e.mark, "(yaml)", "syntax error: " + e.msg + "; expected valid YAML");
    throw config_error(check.take_errors());
  } catch (const YAML::Exception& e) {
    check.fail_at(e.mark, "(yaml)", e.msg);
    throw config_error(check.take_errors());
  }
  if (counter.documents > 1)
    check.fail_at(counter.second, "(yaml)",
                  "a second document starts here; expected a single YAML document");
  // An empty file has no document; check it as an empty map so required keys are reported.
  config result = check.check(doc);
  auto errors = check.take_errors();
  if (!errors.empty()) throw config_error(std::move(errors));
  result.source = source;
  return result;
}

config load_config_file(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  if (!file) throw config_error({path + ": cannot read: " + std::strerror(errno)});
  std::string text;
  char buffer[8192];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0) text.append(buffer, n);
  // fopen succeeds on a directory; the read is what fails (EISDIR).
  if (std::ferror(file.get()))
    throw config_error({path + ": cannot read: " + std::strerror(errno)});
  return load_config_string(text, path);
}

std::optional<std::size_t> parse_size(std::string_view text) {
  auto parts = detail::split_number(text);
  if (!parts) return std::nullopt;
  auto [number, unit] = *parts;
  static constexpr std::pair<std::string_view, std::uint64_t> units[] = {
      {"", 1},
      {"B", 1},
      {"K", 1ull << 10},
      {"KiB", 1ull << 10},
      {"M", 1ull << 20},
      {"MiB", 1ull << 20},
      {"G", 1ull << 30},
      {"GiB", 1ull << 30},
      {"KB", 1000},
      {"kB", 1000},
      {"MB", 1000 * 1000},
      {"GB", 1000 * 1000 * 1000},
  };
  for (auto [name, factor] : units) {
    if (unit != name) continue;
    if (number > std::numeric_limits<std::size_t>::max() / factor) return std::nullopt;
    return static_cast<std::size_t>(number * factor);
  }
  return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  auto parts = detail::split_number(text);
  if (!parts) return std::nullopt;
  auto [number, unit] = *parts;
  static constexpr std::pair<std::string_view, std::uint64_t> units[] = {
      {"ms", 1},
      {"s", 1000},
      {"m", 60 * 1000},
      {"h", 60 * 60 * 1000},
  };
  using rep = std::chrono::milliseconds::rep;
  for (auto [name, factor] : units) {
    if (unit != name) continue;
    if (number > static_cast<std::uint64_t>(std::numeric_limits<rep>::max()) / factor)
      return std::nullopt;
    return std::chrono::milliseconds(static_cast<rep>(number * factor));
  }
  return std::nullopt;
}

std::optional<address> parse_address(std::string_view text) {
  auto parsed = detail::parse_address_verbose(text);
  if (auto* a = std::get_if<address>(&parsed)) return *a;
  return std::nullopt;
}

}  // namespace zcproxy
