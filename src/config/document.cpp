// The top level of a config document and its small sections: log, relay and admin.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "checker.hpp"

namespace zcproxy::detail {
namespace {

void check_level(checker& c, const entry& e, const std::string& path, log_config& out) {
  static const std::vector<std::string_view> levels{"trace", "debug",    "info", "warn",
                                                    "error", "critical", "off"};
  auto expected = "one of: " + join(levels);
  if (auto text = c.scalar(e, path, expected)) {
    if (std::find(levels.begin(), levels.end(), *text) == levels.end())
      c.fail(e, path, "expected " + expected + ", got " + quoted(*text));
    else
      out.level = *text;
  }
}

// The file itself is opened at start-up (server::start); here only what a typo would break: an
// absolute path (a daemon's working directory is nobody's choice) whose directory exists.
void check_access_file(checker& c, const entry& e, const std::string& path, log_config& out) {
  constexpr std::string_view expected =
      "an absolute file path in an existing directory, e.g. /var/log/zcproxy/access.log";
  auto text = c.scalar(e, path, expected);
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
    c.fail(e, path, "expected " + std::string(expected) + ", got " + quoted(file) + ": " + why);
  else
    out.access_file = file;
}

// 0s (off), or at least 1s: the worker's sweep (every 100 ms) writes the interim lines, so a
// shorter interval would be off by more than a tenth, and flood the log besides.
void check_log_interval(checker& c, const entry& e, const std::string& path, log_config& out) {
  constexpr std::string_view range = "0s (no interim lines) or 1s to 24h";
  std::chrono::milliseconds value{};
  if (!c.duration(e, path, std::chrono::milliseconds(0), std::chrono::hours(24), range, value))
    return;
  if (value.count() > 0 && value < std::chrono::seconds(1))
    c.fail(e, path,
           "expected a duration from " + std::string(range) + ", got " + quoted(e.value.scalar()));
  else
    out.interval = value;
}

const key_rule<log_config> log_keys[] = {
    {"level", check_level},
    {"access_log",
     [](auto& c, auto& e, auto& path, auto& out) { c.boolean(e, path, out.access_log); }},
    {"access_format",
     [](auto& c, auto& e, auto& path, auto& out) {
       c.one_of(e, path, access_log_format_names, out.access_format);
     }},
    {"access_file", check_access_file},
    {"on_connect",
     [](auto& c, auto& e, auto& path, auto& out) { c.boolean(e, path, out.on_connect); }},
    {"interval", check_log_interval},
};

const key_rule<relay_config> relay_keys[] = {
    {"engine", [](auto& c, auto& e, auto& path,
                  auto& out) { c.one_of(e, path, engine_mode_names, out.engine); }},
    {"pipe_size",
     [](auto& c, auto& e, auto& path, auto& out) {
       c.size(e, path, std::size_t{4} << 10, std::size_t{1} << 30, "4KiB to 1GiB", out.pipe_size);
     }},
    {"max_pipes",
     [](auto& c, auto& e, auto& path, auto& out) {
       c.integer(e, path, 0, 1'000'000, " (0 = never splice, always copy)", out.max_pipes);
     }},
    {"buffer_size",
     [](auto& c, auto& e, auto& path, auto& out) {
       c.size(e, path, std::size_t{1} << 10, std::size_t{64} << 20, "1KiB to 64MiB",
              out.buffer_size);
     }},
};

void check_admin_bind(checker& c, const entry& e, const std::string& path, admin_config& out) {
  if (auto a = c.addr(e, e.value, path, true)) {
    if (a->local)
      c.fail(e, path,
             "expected an IP literal and port, e.g. 127.0.0.1:9901 (HTTP over a Unix socket is "
             "not served)");
    else
      out.bind = *a;
  }
}

// The token is a secret: its file must be a regular file no one but its owner may read or write
// (mode 0600 or 0400), and hold one line of at least 16 printable characters.
void check_token_file(checker& c, const entry& e, const std::string& path, admin_config& out) {
  constexpr std::string_view expected =
      "an absolute path to a file of mode 0600 or 0400 holding the token (one line, 16 or more "
      "printable characters, e.g. from `openssl rand -hex 32`)";
  auto text = c.scalar(e, path, expected);
  if (!text) return;
  const std::string& file = *text;
  std::string why, token;
  struct stat st {};
  if (file.empty() || file.front() != '/' || file.find('\0') != std::string::npos) {
    why = "not an absolute path";
  } else if (::stat(file.c_str(), &st) != 0) {
    why = std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    why = "not a regular file";
  } else if ((st.st_mode & 077) != 0) {
    why = "group or others may access it (chmod 600 it)";
  } else if (std::ifstream in(file); !in || !std::getline(in, token)) {
    why = "cannot be read";
  } else if (token.size() < 16 || std::any_of(token.begin(), token.end(), [](unsigned char ch) {
               return ch <= ' ' || ch >= 0x7f;
             })) {
    why = "its first line is not 16 or more printable characters without spaces";
  }
  if (!why.empty()) {
    c.fail(e, path, "expected " + std::string(expected) + ", got " + quoted(file) + ": " + why);
    return;
  }
  out.token_file = file;
  out.token = std::move(token);
}

const key_rule<admin_config> admin_keys[] = {
    {"bind", check_admin_bind},
    {"allow", [](auto& c, auto& e, auto& path, auto& out) { c.cidrs(e, path, out.allow); }},
    {"deny", [](auto& c, auto& e, auto& path, auto& out) { c.cidrs(e, path, out.deny); }},
    {"reload", [](auto& c, auto& e, auto& path, auto& out) { c.boolean(e, path, out.reload); }},
    {"token_file", check_token_file},
};

void check_admin(checker& c, const entry& e, const std::string& path, config& cfg) {
  const auto keys = key_names(admin_keys);
  // `admin:` or `admin: {}` is enough: every key has a default.
  if (!e.value.is_null() && !c.expect_map(e, path, "a map with keys " + join(keys))) return;
  auto items = e.value.is_map() ? c.entries(e.value, path, keys) : std::vector<entry>{};
  cfg.admin.enabled = true;
  cfg.admin.bind = *parse_address("127.0.0.1:9901");  // loopback only unless said otherwise
  parse_keys(c, items, path, admin_keys, cfg.admin);
}

// The socket is bound at start-up; here what a typo would break: an absolute path that fits a
// Unix socket address, in a directory that exists.
void check_upgrade_socket(checker& c, const entry& e, const std::string& path, config& cfg) {
  constexpr std::string_view expected =
      "an absolute path of at most 107 bytes in an existing directory, e.g. "
      "/run/zcproxy/upgrade.sock";
  auto text = c.scalar(e, path, expected);
  if (!text) return;
  const std::string& file = *text;
  const auto slash = file.rfind('/');
  std::string why;
  struct stat st {};
  if (file.empty() || file.front() != '/' || file.find('\0') != std::string::npos) {
    why = "not an absolute path";
  } else if (file.size() > 107) {
    why = "longer than a Unix socket address holds";
  } else if (slash + 1 == file.size()) {
    why = "names a directory, not a file";
  } else if (const std::string dir = slash == 0 ? "/" : file.substr(0, slash);
             ::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    why = "directory " + dir + " does not exist";
  }
  if (!why.empty())
    c.fail(e, path, "expected " + std::string(expected) + ", got " + quoted(file) + ": " + why);
  else
    cfg.upgrade_socket = file;
}

const key_rule<config> top_level_keys[] = {
    {"threads", [](auto& c, auto& e, auto& path,
                   auto& cfg) { c.integer(e, path, 0, 1024, " (0 = one per core)", cfg.threads); }},
    {"log",
     [](auto& c, auto& e, auto& path, auto& cfg) { check_map(c, e, path, log_keys, cfg.log); }},
    {"relay",
     [](auto& c, auto& e, auto& path, auto& cfg) { check_map(c, e, path, relay_keys, cfg.relay); }},
    {"drain_timeout",
     [](auto& c, auto& e, auto& path, auto& cfg) {
       c.duration(e, path, std::chrono::milliseconds(0), std::chrono::hours(24), "0s to 24h",
                  cfg.drain_timeout);
     }},
    {"listeners", [](auto& c, auto& e, auto&, auto& cfg) { check_listeners(c, e, cfg); },
     "a non-empty sequence of listeners {name, bind, upstream}"},
    // Read before the others, so listeners can be checked against the names they refer to.
    {"upstreams", nullptr, "a non-empty map of upstream name to {endpoints, ...}"},
    // Read before the upstreams: it gives their `resolve:` defaults.
    {"resolve", nullptr},
    {"admin", check_admin},
    // Read together once the rest is walked: the group depends on the user.
    {"user", nullptr},
    {"group", nullptr},
    {"core_dumps",
     [](auto& c, auto& e, auto& path, auto& cfg) { c.boolean(e, path, cfg.core_dumps); }},
    {"upgrade_socket", check_upgrade_socket},
    {"watch_config",
     [](auto& c, auto& e, auto& path, auto& cfg) { c.boolean(e, path, cfg.watch_config); }},
};

}  // namespace

config check_document(checker& c, const node& root) {
  const auto keys = key_names(top_level_keys);
  config out;
  if (!root.is_map() && !root.is_null()) {
    c.fail_at(root.where(), "(top level)",
              "expected a map with keys " + join(keys) + ", got " + describe(root));
    return out;
  }
  std::vector<entry> items;
  if (root.is_map()) items = c.entries(root, "", keys);
  require_keys(c, items, root, "", top_level_keys);
  if (const auto* e = checker::find(items, "resolve")) check_resolve(c, *e, "resolve", out.resolve);
  if (const auto* e = checker::find(items, "upstreams")) check_upstreams(c, *e, out);
  parse_keys(c, items, "", top_level_keys, out);
  check_run_as(c, checker::find(items, "user"), checker::find(items, "group"), out.run_as);
  return out;
}

}  // namespace zcproxy::detail
