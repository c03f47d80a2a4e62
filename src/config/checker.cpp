// Error collection and the value checks every section of the config uses.
#include "checker.hpp"

#include <algorithm>
#include <map>

namespace zcproxy::detail {
namespace {

constexpr std::string_view size_hint =
    "a size in bytes, e.g. 65536, 64KiB or 1MiB (units B, KiB, MiB, GiB, KB, MB, GB)";
constexpr std::string_view duration_hint =
    "a duration with a unit, e.g. 500ms, 10s, 1m or 1h (units ms, s, m, h)";

// Where to point for a value: a null value (`key:` with nothing after it) carries the mark of
// whatever follows it, so the key's own position is the useful one.
mark mark_of(const entry& e) {
  return e.value.is_null() ? e.key_node.where() : e.value.where();
}

}  // namespace

std::string join(const std::vector<std::string_view>& words) {
  std::string out;
  for (auto w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

std::string quoted(std::string_view s) {
  // Appended, not `"\"" + std::string(s) + "\""`: GCC 12 at -O3 warns about that one (-Wrestrict,
  // a known false positive of its inlined operator+, GCC bug 105329).
  std::string out(1, '"');
  out.append(s).push_back('"');
  return out;
}

std::string child(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string element(const std::string& path, std::size_t index) {
  return path + "[" + std::to_string(index) + "]";
}

std::string describe(const node& n) {
  switch (n.type()) {
    case node::kind::scalar:
      return quoted(n.scalar());
    case node::kind::sequence:
      return "a sequence";
    case node::kind::map:
      return "a map";
    case node::kind::null:
    case node::kind::undefined:
      break;
  }
  return "an empty value";
}

void checker::fail_at(const mark& at, const std::string& key, const std::string& what) {
  // A null mark happens for nodes the parser synthesised; point at the start of the file.
  int line = at.is_null() ? 1 : at.line + 1;
  int column = at.is_null() ? 1 : at.column + 1;
  errors_.push_back({line, column,
                     source_ + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " +
                         key + ": " + what});
}

void checker::fail(const entry& e, const std::string& key, const std::string& what) {
  fail_at(mark_of(e), key, what);
}

std::vector<std::string> checker::take_errors() {
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

std::vector<entry> checker::entries(const node& map, const std::string& path,
                                    const std::vector<std::string_view>& allowed,
                                    std::string_view what) {
  std::vector<entry> out;
  std::map<std::string, int> first_line;
  for (auto& [key_node, value] : map.entries()) {
    if (!key_node.is_scalar()) {
      fail_at(key_node.where(), path.empty() ? "(top level)" : path,
              "expected a plain string key, got " + describe(key_node));
      continue;
    }
    std::string key = key_node.scalar();
    std::string key_path = child(path, key);
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      fail_at(key_node.where(), key_path, "unknown key; expected one of: " + join(allowed));
      continue;
    }
    auto [it_first, inserted] = first_line.emplace(key, key_node.where().line + 1);
    if (!inserted) {
      fail_at(key_node.where(), key_path,
              "duplicate " + std::string(what) + " " + quoted(key) + " (first given at line " +
                  std::to_string(it_first->second) + "); expected each " + std::string(what) +
                  " once");
      continue;
    }
    out.push_back({std::move(key), key_node, value});
  }
  return out;
}

const entry* checker::find(const std::vector<entry>& list, std::string_view key) {
  for (const auto& e : list)
    if (e.key == key) return &e;
  return nullptr;
}

void checker::require(const std::vector<entry>& list, const node& map, const std::string& path,
                      std::string_view key, std::string_view expected) {
  if (find(list, key) == nullptr)
    fail_at(map.where(), child(path, key),
            "required key is missing; expected " + std::string(expected));
}

bool checker::expect_map(const entry& e, const std::string& path, std::string_view expected) {
  if (e.value.is_map()) return true;
  fail(e, path, "expected " + std::string(expected) + ", got " + describe(e.value));
  return false;
}

std::optional<std::string> checker::scalar(const entry& e, const std::string& path,
                                           std::string_view expected) {
  if (e.value.is_scalar()) return e.value.scalar();
  fail(e, path, "expected " + std::string(expected) + ", got " + describe(e.value));
  return std::nullopt;
}

std::optional<std::string> checker::name(const entry& e, const std::string& path) {
  auto text = scalar(e, path, "a non-empty name");
  if (text && text->empty()) {
    fail(e, path, "expected a non-empty name, got \"\"");
    return std::nullopt;
  }
  return text;
}

void checker::boolean(const entry& e, const std::string& path, bool& out) {
  if (auto value = e.value.as_bool())
    out = *value;
  else
    fail(e, path, "expected true or false, got " + describe(e.value));
}

void checker::size(const entry& e, const std::string& path, std::size_t min, std::size_t max,
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

bool checker::duration(const entry& e, const std::string& path, std::chrono::milliseconds min,
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

std::optional<address> checker::addr(const entry& e, const node& n, const std::string& path,
                                     bool allow_port_zero) {
  auto at = n.is_null() ? mark_of(e) : n.where();
  if (!n.is_scalar()) {
    fail_at(at, path, "expected " + std::string(address_hint) + ", got " + describe(n));
    return std::nullopt;
  }
  std::string why;
  auto a = parse_address(n.scalar(), why);
  if (!a) {
    fail_at(at, path,
            "expected " + std::string(address_hint) + ", got " + quoted(n.scalar()) + ": " + why);
    return std::nullopt;
  }
  if (a->port == 0 && !a->local && !allow_port_zero) {
    fail_at(at, path,
            "expected a port from 1 to 65535, got " + quoted(n.scalar()) +
                " (port 0 is only meaningful for a listener)");
    return std::nullopt;
  }
  return a;
}

void checker::cidrs(const entry& e, const std::string& path, std::vector<cidr>& out) {
  constexpr std::string_view expected =
      "a sequence of address blocks, e.g. [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\"]";
  if (!e.value.is_sequence()) {
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

void checker::upstream_name(const entry& e, const std::string& path, const std::string& name,
                            const config& cfg) {
  if (cfg.find_upstream(name) != nullptr || cfg.upstreams.empty()) return;
  std::vector<std::string_view> known;
  for (const auto& u : cfg.upstreams) known.push_back(u.name);
  fail(e, path, "no upstream named " + quoted(name) + "; expected one of: " + join(known));
}

void connect_timeout(checker& c, const entry& e, const std::string& path, timeouts_config& out) {
  std::chrono::milliseconds value{};
  if (c.duration(e, path, std::chrono::milliseconds(1), std::chrono::hours(1), "1ms to 1h", value))
    out.connect = value;
}

void idle_timeout(checker& c, const entry& e, const std::string& path, timeouts_config& out) {
  std::chrono::milliseconds value{};
  if (c.duration(e, path, std::chrono::milliseconds(0), std::chrono::hours(7 * 24),
                 "0s to 168h (7 days; 0s = no idle timeout)", value))
    out.idle = value;
}

void max_connection_duration(checker& c, const entry& e, const std::string& path,
                             timeouts_config& out) {
  std::chrono::milliseconds value{};
  if (c.duration(e, path, std::chrono::milliseconds(0), std::chrono::hours(30 * 24),
                 "0s to 720h (30 days; 0s = no limit)", value))
    out.max_duration = value;
}

}  // namespace zcproxy::detail
