// A read-only view of one node of the parsed config document, with its position, so the checkers
// need no YAML library: loader.cpp, the only file that includes yaml-cpp, implements it over a
// YAML::Node. Cheap to copy (it shares the document); nothing is converted until asked for, so
// aliases are followed only as far as a checker reads.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace zcproxy::detail {

// A position in the document, 0-based as the parser reports it; -1 everywhere for a node the
// parser synthesised.
struct mark {
  int line = -1;
  int column = -1;
  bool null = true;
  bool is_null() const { return null; }
};

class node {
 public:
  enum class kind { undefined, null, scalar, sequence, map };

  node();  // an empty document: a null node at no position

  kind type() const;
  bool is_null() const { return type() == kind::null; }
  bool is_scalar() const { return type() == kind::scalar; }
  bool is_sequence() const { return type() == kind::sequence; }
  bool is_map() const { return type() == kind::map; }

  const std::string& scalar() const;
  mark where() const;
  std::size_t size() const;                            // elements of a sequence, entries of a map
  node operator[](std::size_t index) const;            // a sequence's element
  std::vector<std::pair<node, node>> entries() const;  // a map's keys and values, in order
  // A scalar YAML reads as a boolean (true, false, yes, no, on, off, ...); nullopt otherwise.
  std::optional<bool> as_bool() const;

  struct impl;
  explicit node(std::shared_ptr<const impl> self) : self_(std::move(self)) {}

 private:
  std::shared_ptr<const impl> self_;
};

}  // namespace zcproxy::detail
