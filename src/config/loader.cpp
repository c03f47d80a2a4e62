// Config loading: YAML text -> validated zcproxy::config. The only file that includes yaml-cpp:
// it parses the document and hands the checkers a node view of it (node.hpp).
// The whole document is checked before anything is returned, and every problem is collected so
// an operator fixes a config in one round instead of one error per restart.
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <sstream>

#include "checker.hpp"

namespace zcproxy {
namespace detail {

struct node::impl {
  YAML::Node yaml;
};

namespace {

node wrap(const YAML::Node& yaml) {
  return node(std::make_shared<const node::impl>(node::impl{yaml}));
}

mark mark_from(const YAML::Mark& m) {
  return m.is_null() ? mark{} : mark{m.line, m.column, false};
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

std::string join_lines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) {
    if (!out.empty()) out += '\n';
    out += line;
  }
  return out;
}

}  // namespace

node::node() : node(std::make_shared<const impl>()) {}

node::kind node::type() const {
  switch (self_->yaml.Type()) {
    case YAML::NodeType::Null:
      return kind::null;
    case YAML::NodeType::Scalar:
      return kind::scalar;
    case YAML::NodeType::Sequence:
      return kind::sequence;
    case YAML::NodeType::Map:
      return kind::map;
    case YAML::NodeType::Undefined:
      break;
  }
  return kind::undefined;
}

const std::string& node::scalar() const {
  return self_->yaml.Scalar();
}

mark node::where() const {
  return mark_from(self_->yaml.Mark());
}

std::size_t node::size() const {
  return self_->yaml.size();
}

node node::operator[](std::size_t index) const {
  return wrap(self_->yaml[index]);
}

std::vector<std::pair<node, node>> node::entries() const {
  std::vector<std::pair<node, node>> out;
  if (!self_->yaml.IsMap()) return out;
  // By value: yaml-cpp's iterator hands out a temporary pair, so a reference would dangle.
  for (auto kv : self_->yaml) out.emplace_back(wrap(kv.first), wrap(kv.second));
  return out;
}

std::optional<bool> node::as_bool() const {
  bool value = false;
  if (!self_->yaml.IsScalar() || !YAML::convert<bool>::decode(self_->yaml, value))
    return std::nullopt;
  return value;
}

}  // namespace detail

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
    check.fail_at(detail::mark_from(e.mark), "(yaml)",
                  "syntax error: " + e.msg + "; expected valid YAML");
    throw config_error(check.take_errors());
  } catch (const YAML::Exception& e) {
    check.fail_at(detail::mark_from(e.mark), "(yaml)", e.msg);
    throw config_error(check.take_errors());
  }
  if (counter.documents > 1)
    check.fail_at(detail::mark_from(counter.second), "(yaml)",
                  "a second document starts here; expected a single YAML document");
  // An empty file has no document; check it as an empty map so required keys are reported.
  config result = detail::check_document(check, detail::wrap(doc));
  auto errors = check.take_errors();
  if (!errors.empty()) throw config_error(std::move(errors));
  result.source = source;
  result.source_digest = std::hash<std::string>{}(yaml);
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

}  // namespace zcproxy
