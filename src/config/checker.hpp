// The config checker's shared parts: error collection (every problem at once, each with
// FILE:LINE:COL), the walk over a map's keys, the value checks every section uses, and the key
// tables that declare each section's keys once. Private to src/config.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "node.hpp"
#include "zcproxy/config.hpp"

namespace zcproxy::detail {

inline constexpr std::string_view address_hint =
    "an IP literal and port, e.g. 127.0.0.1:9000 or [::1]:9000, or unix:/path/to.sock";

std::string join(const std::vector<std::string_view>& words);
std::string quoted(std::string_view s);
std::string child(const std::string& path, std::string_view key);  // "a.b"
std::string element(const std::string& path, std::size_t index);   // "a[3]"
std::string describe(const node& n);  // what was found instead: "\"x\"", "a map", ...
// The way a config would write `d`: "1h", "90s", "1500ms".
std::string format_duration(std::chrono::milliseconds d);

// One key/value of a YAML map, with the key's node kept for its position.
struct entry {
  std::string key;
  node key_node;
  node value;
};

// Collects every problem with its position; the value checks report through it and return
// whether (or what) they parsed.
class checker {
 public:
  explicit checker(std::string source) : source_(std::move(source)) {}

  const std::string& source() const { return source_; }
  void fail_at(const mark& at, const std::string& key, const std::string& what);
  void fail(const entry& e, const std::string& key, const std::string& what);
  // Every problem so far, in file order.
  std::vector<std::string> take_errors();

  // Map entries in document order. Reports non-scalar keys, unknown keys (when `allowed` is not
  // empty) and duplicate keys: yaml-cpp keeps both copies of a repeated key and lookups would
  // silently see only the first.
  std::vector<entry> entries(const node& map, const std::string& path,
                             const std::vector<std::string_view>& allowed,
                             std::string_view what = "key");
  static const entry* find(const std::vector<entry>& list, std::string_view key);
  // A missing required key has no node of its own; point at the map that should hold it.
  void require(const std::vector<entry>& list, const node& map, const std::string& path,
               std::string_view key, std::string_view expected);

  bool expect_map(const entry& e, const std::string& path, std::string_view expected);
  std::optional<std::string> scalar(const entry& e, const std::string& path,
                                    std::string_view expected);
  std::optional<std::string> name(const entry& e, const std::string& path);  // non-empty
  void boolean(const entry& e, const std::string& path, bool& out);
  void size(const entry& e, const std::string& path, std::size_t min, std::size_t max,
            std::string_view range, std::size_t& out);
  // True when `out` was set.
  bool duration(const entry& e, const std::string& path, std::chrono::milliseconds min,
                std::chrono::milliseconds max, std::string_view range,
                std::chrono::milliseconds& out);
  // `n` differs from e.value for sequence elements (endpoints).
  std::optional<address> addr(const entry& e, const node& n, const std::string& path,
                              bool allow_port_zero);
  // A sequence of address blocks: "10.0.0.0/8", "2001:db8::/32", "192.168.1.7".
  void cidrs(const entry& e, const std::string& path, std::vector<cidr>& out);
  // `name` must be one of cfg's upstreams (when there are any: else that is reported already).
  void upstream_name(const entry& e, const std::string& path, const std::string& name,
                     const config& cfg);

  // A key that takes one of an enum's names (its one table, enum_names.hpp); `out` gets the
  // enumerator named.
  template <typename T, std::size_t N>
  void one_of(const entry& e, const std::string& path, const std::array<std::string_view, N>& names,
              T& out) {
    const std::string expected =
        "one of: " + join(std::vector<std::string_view>(names.begin(), names.end()));
    auto text = scalar(e, path, expected);
    if (!text) return;
    if (auto value = parse_name<T>(names, *text))
      out = *value;
    else
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

 private:
  struct located_error {
    int line;
    int column;
    std::string text;
  };

  std::string source_;
  std::vector<located_error> errors_;
};

// The timeouts a listener and an upstream both take.
void connect_timeout(checker& c, const entry& e, const std::string& path, timeouts_config& out);
void idle_timeout(checker& c, const entry& e, const std::string& path, timeouts_config& out);
void max_connection_duration(checker& c, const entry& e, const std::string& path,
                             timeouts_config& out);

// One key a section takes, declared once (the idea of nginx's ngx_command_t): its name (the
// unknown-key check and the "expected one of" lists read the table in this order), what checks
// its value into the section's scope, and whether it must be given.
template <typename Scope>
struct key_rule {
  std::string_view name;
  // nullptr: the section reads the key itself, because it depends on other keys or must be
  // read before them.
  void (*parse)(checker&, const entry&, const std::string& path, Scope&) = nullptr;
  // Not empty: the key is required, and this is what the message says was expected.
  std::string_view required = {};
};

template <typename Scope, std::size_t N>
std::vector<std::string_view> key_names(const key_rule<Scope> (&table)[N]) {
  std::vector<std::string_view> names;
  for (const auto& rule : table) names.push_back(rule.name);
  return names;
}

// Reports each required key of `table` that `items` (the entries of `map`) lacks.
template <typename Scope, std::size_t N>
void require_keys(checker& c, const std::vector<entry>& items, const node& map,
                  const std::string& path, const key_rule<Scope> (&table)[N]) {
  for (const auto& rule : table)
    if (!rule.required.empty()) c.require(items, map, path, rule.name, rule.required);
}

// Each of `items` (known keys: entries() checked them) to its rule, in document order.
template <typename Scope, std::size_t N>
void parse_keys(checker& c, const std::vector<entry>& items, const std::string& path,
                const key_rule<Scope> (&table)[N], Scope& scope) {
  for (const auto& item : items)
    for (const auto& rule : table)
      if (rule.name == item.key && rule.parse) rule.parse(c, item, child(path, item.key), scope);
}

// A key whose value is a map of the keys in `table`, each checked into `scope`.
template <typename Scope, std::size_t N>
void check_map(checker& c, const entry& e, const std::string& path,
               const key_rule<Scope> (&table)[N], Scope& scope) {
  const auto keys = key_names(table);
  if (!c.expect_map(e, path, "a map with keys " + join(keys))) return;
  auto items = c.entries(e.value, path, keys);
  require_keys(c, items, e.value, path, table);
  parse_keys(c, items, path, table, scope);
}

// The sections, one file each.
config check_document(checker& c, const node& root);                    // document.cpp
void check_listeners(checker& c, const entry& e, config& out);          // listeners.cpp
void check_routes(checker& c, const entry& e, const std::string& path,  // routes.cpp
                  const config& cfg, sni_routes& out);
void check_upstreams(checker& c, const entry& e, config& out);  // upstreams.cpp
// `resolve:`, at the top level or in an upstream, over what `out` holds already.
void check_resolve(checker& c, const entry& e, const std::string& path, resolve_config& out);

void check_run_as(checker& c, const entry* user, const entry* group,
                  std::optional<run_as_config>& out);  // run_as.cpp
// fallback_body.cpp: `file` read whole into a sealed memfd; nullptr and `why` when it cannot be.
std::shared_ptr<const fallback_body> load_fallback_body(const std::string& file, std::string& why);

}  // namespace zcproxy::detail
