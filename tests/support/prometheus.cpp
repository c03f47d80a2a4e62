#include "support/prometheus.hpp"

#include <cmath>
#include <regex>
#include <set>
#include <sstream>
#include <vector>

#include "support/net.hpp"

namespace test {
namespace {

[[noreturn]] void bad(std::size_t line, const std::string& text, const std::string& why) {
  throw std::runtime_error("metrics line " + std::to_string(line) + " (" + text + "): " + why);
}

double parse_value(const std::string& v, std::size_t line, const std::string& text) {
  if (v == "+Inf") return INFINITY;
  if (v == "-Inf") return -INFINITY;
  if (v == "NaN") return NAN;
  static const std::regex number(R"([-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)");
  if (!std::regex_match(v, number)) bad(line, text, "bad value \"" + v + "\"");
  return std::stod(v);
}

struct histogram_series {
  std::vector<std::pair<double, double>> buckets;  // le, count, in order written
  double count = -1;
};

}  // namespace

std::map<std::string, double> parse_prometheus(const std::string& text) {
  if (!text.empty() && text.back() != '\n') throw std::runtime_error("metrics do not end with \\n");
  static const std::regex help(R"(# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .*)");
  static const std::regex type(
      R"(# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped))");
  static const std::regex sample(R"(([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+))");
  static const std::regex label(R"(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)\"(,|$))");

  std::map<std::string, double> out;
  std::set<std::string> declared, finished;
  std::string family, family_type;
  std::map<std::string, histogram_series> histograms;  // by labels without le
  std::istringstream in(text);
  std::string line;
  std::size_t n = 0;
  auto finish = [&] {
    for (const auto& [labels, h] : histograms) {
      if (h.buckets.empty() || !std::isinf(h.buckets.back().first))
        throw std::runtime_error(family + labels + ": no +Inf bucket last");
      for (std::size_t i = 1; i < h.buckets.size(); ++i)
        if (h.buckets[i].first <= h.buckets[i - 1].first ||
            h.buckets[i].second < h.buckets[i - 1].second)
          throw std::runtime_error(family + labels + ": buckets not cumulative in increasing le");
      if (h.count != h.buckets.back().second)
        throw std::runtime_error(family + labels + ": _count differs from the +Inf bucket");
    }
    histograms.clear();
    if (!family.empty()) finished.insert(family);
  };
  while (std::getline(in, line)) {
    ++n;
    std::smatch m;
    if (line.rfind("# HELP ", 0) == 0) {
      if (!std::regex_match(line, m, help)) bad(n, line, "malformed HELP");
      continue;
    }
    if (line.rfind("#", 0) == 0) {
      if (!std::regex_match(line, m, type)) bad(n, line, "malformed TYPE or comment");
      finish();
      family = m[1];
      family_type = m[2];
      if (!declared.insert(family).second) bad(n, line, "family declared twice");
      if (family_type == "counter" && !family.ends_with("_total"))
        bad(n, line, "a counter's name must end in _total");
      continue;
    }
    if (!std::regex_match(line, m, sample)) bad(n, line, "malformed sample");
    const std::string name = m[1], labels = m[3], value_text = m[4];
    if (family.empty()) bad(n, line, "sample before any TYPE");
    std::string suffix;
    if (name != family) {
      if (family_type != "histogram" || name.rfind(family, 0) != 0)
        bad(n, line, "not its family's name");
      suffix = name.substr(family.size());
      if (suffix != "_bucket" && suffix != "_sum" && suffix != "_count")
        bad(n, line, "not its family's name");
    } else if (family_type == "histogram") {
      bad(n, line, "a histogram sample needs _bucket, _sum or _count");
    }
    if (finished.count(name)) bad(n, line, "family's samples not contiguous");
    // Labels: the whole text must be a sequence of name="value" pairs.
    std::string rest = labels, without_le;
    std::string le;
    while (!rest.empty()) {
      std::smatch l;
      if (!std::regex_search(rest, l, label) || l.position(0) != 0)
        bad(n, line, "malformed labels {" + labels + "}");
      if (l[1] == "le")
        le = l[2];
      else
        without_le += l.str(0);
      rest = l.suffix();
    }
    if (!without_le.empty() && without_le.back() == ',') without_le.pop_back();
    const double value = parse_value(value_text, n, line);
    const std::string key = name + "{" + labels + "}";
    if (!out.emplace(key, value).second) bad(n, line, "series appears twice");
    if (family_type == "histogram") {
      auto& h = histograms[without_le];
      if (suffix == "_bucket") {
        if (le.empty()) bad(n, line, "a bucket without le");
        h.buckets.emplace_back(parse_value(le, n, line), value);
      } else if (suffix == "_count") {
        h.count = value;
      }
    }
  }
  finish();
  return out;
}

std::map<std::string, double> scrape_metrics(std::uint16_t admin_port) {
  fd s = connect_to(admin_port);
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  send_all(s.get(), req.data(), req.size());
  const bytes raw = recv_all(s.get());
  const std::string text(raw.begin(), raw.end());
  const auto body = text.find("\r\n\r\n");
  if (body == std::string::npos) throw std::runtime_error("/metrics: no HTTP response: " + text);
  return parse_prometheus(text.substr(body + 4));
}

}  // namespace test
