// What the proxy counts, read out: plain values summed over workers (a snapshot, see
// control_api) and rendered as Prometheus text or the stats page's JSON. Pure: no sockets, no
// Asio. The counters themselves live where the work happens (counters.hpp, upstream.hpp).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zcproxy/control_api.hpp"

namespace zcproxy {

// Prometheus text exposition format 0.0.4.
std::string render_prometheus(const proxy_stats& s);

// One second of throughput, for the stats page's chart.
struct throughput_sample {
  double time = 0;  // Unix time, seconds
  double up = 0;    // bytes per second, client -> upstream, all listeners
  double down = 0;
};

// The stats page's data (also GET /stats.json): `s`, plus the last minute of throughput.
std::string render_stats_json(const proxy_stats& s, const std::vector<throughput_sample>& history);

// GET /upstreams: {"upstreams": [{"name", "endpoints": [...]}]}, each endpoint as in
// /stats.json (with its run-time state and weight); with `only`, that upstream's object alone,
// or nullopt when there is none of that name.
std::optional<std::string> render_upstreams_json(const proxy_stats& s,
                                                 std::optional<std::string_view> only = {});

// The stats page itself: one self-contained HTML document (no external assets).
std::string_view stats_page_html();

}  // namespace zcproxy
