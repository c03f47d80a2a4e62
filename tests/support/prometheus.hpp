// A strict reader of the Prometheus text exposition format (0.0.4), for tests: it throws on
// anything the format does not allow, so a test that reads /metrics also checks its syntax.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>

namespace test {

// Every sample, keyed `name{label="value",...}` with labels in the order written.
// Throws std::runtime_error (naming the line) when:
// - a line is neither `# HELP name text`, `# TYPE name type` nor `name[{labels}] value`;
// - a metric or label name is malformed, a label value badly quoted or escaped;
// - a sample comes before its family's TYPE, or a family's samples are not contiguous, or a
//   family is declared twice, or a series appears twice;
// - a counter's name lacks `_total`, a sample's name is not its family's (histograms: _bucket,
//   _sum, _count);
// - a histogram's buckets are not cumulative in increasing `le` ending at +Inf, or its _count
//   differs from the +Inf bucket;
// - the text does not end with a line feed.
std::map<std::string, double> parse_prometheus(const std::string& text);

// GET /metrics from an admin listener on 127.0.0.1:admin_port, parsed as above.
std::map<std::string, double> scrape_metrics(std::uint16_t admin_port);

}  // namespace test
