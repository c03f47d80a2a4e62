#include "metrics.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>

namespace zcproxy {
namespace json = boost::json;

namespace {

// A label value: backslash, double quote and line feed escaped, as the format requires.
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc{} ? std::string(buf, end) : "NaN";
}

// One metric family: HELP and TYPE, then its samples, grouped as the format requires.
class family {
 public:
  family(std::string& out, std::string_view name, std::string_view type, std::string_view help)
      : out_(out), name_(name) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  // `labels` is "" or `a="x",b="y"` (values already escaped); `suffix` is for histograms.
  family& sample(const std::string& labels, double value, std::string_view suffix = "") {
    out_ += name_;
    out_ += suffix;
    if (!labels.empty()) out_ += '{' + labels + '}';
    out_ += ' ';
    out_ += number(value);
    out_ += '\n';
    return *this;
  }

 private:
  std::string& out_;
  std::string_view name_;
};

// A histogram over duration_buckets (`counts` per bucket, the last +Inf) as its cumulative
// buckets, sum and count.
void histogram(family& f, const std::string& labels,
               const std::array<std::uint64_t, duration_buckets.size() + 1>& counts, double sum) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    const std::string le = i < duration_buckets.size() ? number(duration_buckets[i]) : "+Inf";
    f.sample(labels + ",le=\"" + le + '"', static_cast<double>(cumulative), "_bucket");
  }
  f.sample(labels, sum, "_sum");
  f.sample(labels, static_cast<double>(cumulative), "_count");
}

std::string listener_label(const listener_stats& l) {
  return "listener=\"" + label(l.name) + '"';
}

std::string endpoint_labels(const endpoint_stats& e) {
  return "upstream=\"" + label(e.upstream) + "\",endpoint=\"" + label(e.at.to_string()) + '"' +
         (e.name.empty() ? "" : ",name=\"" + label(e.name) + '"');
}

double d(auto v) {
  return static_cast<double>(v);
}

// The process-wide families.
void render_process(std::string& out, const proxy_stats& s) {
  family(out, "zcproxy_build_info", "gauge", "Always 1; the version is a label.")
      .sample("version=\"" + label(s.version) + '"', 1);
  family(out, "zcproxy_start_time_seconds", "gauge", "When the process started, in Unix time.")
      .sample("", s.start_time);
  family(out, "zcproxy_connections_active", "gauge", "Client connections open, all listeners.")
      .sample("", d(s.sessions));
  family(out, "zcproxy_pipes", "gauge", "Splice pipes: leased (moving bytes) or idle in a pool.")
      .sample("state=\"leased\"", d(s.pipes_leased))
      .sample("state=\"idle\"", d(s.pipes_idle));
  family(out, "zcproxy_copy_buffers_leased", "gauge", "Copy engine buffers in use.")
      .sample("", d(s.buffers_leased));
  family(out, "zcproxy_config_reloads_total", "counter", "Config reloads, by result.")
      .sample("result=\"applied\"", d(s.reloads))
      .sample("result=\"refused\"", d(s.reloads_failed));
}

// Each listener's connections and what ended them.
void render_listener_connections(std::string& out, const proxy_stats& s) {
  {
    family f(out, "zcproxy_listener_connections_accepted_total", "counter",
             "Client connections accepted.");
    for (const auto& l : s.listeners) f.sample(listener_label(l), d(l.accepted));
  }
  {
    family f(out, "zcproxy_listener_connections_active", "gauge", "Client connections open.");
    for (const auto& l : s.listeners) f.sample(listener_label(l), d(l.active));
  }
  {
    family f(out, "zcproxy_listener_connections_refused_total", "counter",
             "Clients refused before any upstream connect, by reason.");
    for (const auto& l : s.listeners)
      for (close_reason r : close_reasons)
        if (is_refusal(r))
          f.sample(listener_label(l) + ",reason=\"" + std::string(to_string(r)) + '"',
                   d(l.closed[r]));
  }
  {
    family f(out, "zcproxy_listener_connections_closed_total", "counter",
             "Client connections ended, by the access log's close reason.");
    for (const auto& l : s.listeners)
      for (close_reason r : close_reasons)
        f.sample(listener_label(l) + ",reason=\"" + std::string(to_string(r)) + '"',
                 d(l.closed[r]));
  }
  {
    family f(out, "zcproxy_listener_timeouts_total", "counter",
             "Connections closed by a timeout, by kind.");
    for (const auto& l : s.listeners)
      for (close_reason r : close_reasons)
        if (auto kind = timeout_kind(r); !kind.empty())
          f.sample(listener_label(l) + ",kind=\"" + std::string(kind) + '"', d(l.closed[r]));
  }
}

// Each listener's bytes, engines, mirrors and session durations.
void render_listener_traffic(std::string& out, const proxy_stats& s) {
  {
    family f(out, "zcproxy_listener_bytes_total", "counter",
             "Bytes relayed, by direction (counted as they move).");
    for (const auto& l : s.listeners) {
      f.sample(listener_label(l) + ",direction=\"client_to_upstream\"", d(l.bytes_up));
      f.sample(listener_label(l) + ",direction=\"upstream_to_client\"", d(l.bytes_down));
    }
  }
  {
    family f(out, "zcproxy_listener_relayed_bytes_total", "counter",
             "Bytes relayed, by the engine that moved them.");
    for (const auto& l : s.listeners) {
      f.sample(listener_label(l) + ",engine=\"splice\"", d(l.spliced));
      f.sample(listener_label(l) + ",engine=\"copy\"", d(l.copied));
    }
  }
  {
    family f(out, "zcproxy_listener_splice_fallbacks_total", "counter",
             "Connection directions that left splice for copy, by reason.");
    for (const auto& l : s.listeners)
      for (std::size_t i = 0; i < splice_fallback_reasons.size(); ++i)
        f.sample(listener_label(l) + ",reason=\"" + std::string(splice_fallback_reasons[i]) + '"',
                 d(l.fallbacks[i]));
  }
  {
    family f(out, "zcproxy_listener_mirrors_total", "counter",
             "Mirrored connections (listener mirror:), by how the mirror ended.");
    for (const auto& l : s.listeners)
      for (std::size_t i = 0; i < mirror_result_names.size(); ++i)
        f.sample(listener_label(l) + ",result=\"" + std::string(mirror_result_names[i]) + '"',
                 d(l.mirrors[i]));
  }
  {
    family f(out, "zcproxy_listener_mirror_bytes_total", "counter",
             "Client bytes sent to mirror upstreams, by mirrors that have ended.");
    for (const auto& l : s.listeners) f.sample(listener_label(l), d(l.mirror_bytes));
  }
  {
    family f(out, "zcproxy_listener_session_duration_seconds", "histogram",
             "How long client connections lasted.");
    for (const auto& l : s.listeners) histogram(f, listener_label(l), l.durations, l.duration_sum);
  }
}

// Each upstream endpoint's health and traffic.
void render_endpoints(std::string& out, const proxy_stats& s) {
  {
    family f(out, "zcproxy_endpoint_up", "gauge", "1 when active health checks pass (or are off).");
    for (const auto& e : s.endpoints) f.sample(endpoint_labels(e), e.healthy ? 1 : 0);
  }
  {
    family f(out, "zcproxy_endpoint_usable", "gauge",
             "1 when ready, up and not ejected by passive checks.");
    for (const auto& e : s.endpoints) f.sample(endpoint_labels(e), e.usable ? 1 : 0);
  }
  {
    family f(out, "zcproxy_endpoint_state", "gauge",
             "1 for the endpoint's run-time state (ready, drain or maint), 0 for the others.");
    for (const auto& e : s.endpoints)
      for (const auto name : endpoint_mode_names)
        f.sample(endpoint_labels(e) + ",state=\"" + std::string(name) + '"',
                 to_string(e.mode) == name ? 1 : 0);
  }
  {
    family f(out, "zcproxy_endpoint_weight", "gauge", "Its weight now (the file's unless set).");
    for (const auto& e : s.endpoints) f.sample(endpoint_labels(e), d(e.weight));
  }
  {
    family f(out, "zcproxy_endpoint_effective_weight", "gauge",
             "The weight picks go by now: less than its weight while in its slow start.");
    for (const auto& e : s.endpoints) f.sample(endpoint_labels(e), e.effective_weight);
  }
  {
    family f(out, "zcproxy_endpoint_connections_active", "gauge", "Connections open to it.");
    for (const auto& e : s.endpoints) f.sample(endpoint_labels(e), d(e.active));
  }
  {
    family f(out, "zcproxy_endpoint_connections_total", "counter", "Connections made to it.");
    for (const auto& e : s.endpoints) f.sample(endpoint_labels(e), d(e.connections));
  }
  {
    family f(out, "zcproxy_endpoint_connect_failures_total", "counter",
             "Connect attempts to it that failed or timed out.");
    for (const auto& e : s.endpoints) f.sample(endpoint_labels(e), d(e.connect_failures));
  }
  {
    family f(out, "zcproxy_endpoint_bytes_total", "counter",
             "Bytes relayed to and from it, counted as they move, by direction.");
    for (const auto& e : s.endpoints) {
      f.sample(endpoint_labels(e) + ",direction=\"client_to_upstream\"", d(e.bytes_up));
      f.sample(endpoint_labels(e) + ",direction=\"upstream_to_client\"", d(e.bytes_down));
    }
  }
}

// Each limited upstream's queue (max_connections_per_endpoint).
void render_queues(std::string& out, const proxy_stats& s) {
  if (s.queues.empty()) return;
  auto upstream_label = [](const upstream_queue_stats& q) {
    return "upstream=\"" + label(q.upstream) + '"';
  };
  {
    family f(out, "zcproxy_upstream_queue_length", "gauge",
             "Clients waiting for a slot under max_connections_per_endpoint.");
    for (const auto& q : s.queues) f.sample(upstream_label(q), d(q.waiting));
  }
  {
    family f(out, "zcproxy_upstream_queue_refused_total", "counter",
             "Clients refused by the queue, by close reason.");
    for (const auto& q : s.queues) {
      f.sample(upstream_label(q) + ",reason=\"queue_full\"", d(q.refused_full));
      f.sample(upstream_label(q) + ",reason=\"queue_timeout\"", d(q.refused_timeout));
    }
  }
  {
    family f(out, "zcproxy_upstream_queue_wait_seconds", "histogram",
             "How long queued clients waited, whatever ended the wait.");
    for (const auto& q : s.queues) histogram(f, upstream_label(q), q.waits, q.wait_sum);
  }
}

// Each DNS name's addresses and resolutions.
void render_dns(std::string& out, const proxy_stats& s) {
  if (s.dns.empty()) return;
  auto labels = [](const dns_stats& n) {
    return "name=\"" + label(n.name) + "\",family=\"" + label(n.family) + '"';
  };
  {
    family f(out, "zcproxy_dns_addresses", "gauge",
             "Addresses in use for the name (its last good answer's).");
    for (const auto& n : s.dns) f.sample(labels(n), d(n.addresses));
  }
  {
    family f(out, "zcproxy_dns_resolutions_total", "counter",
             "Resolutions of the name, by result.");
    for (const auto& n : s.dns)
      for (std::size_t r = 0; r < dns_result_names.size(); ++r)
        f.sample(labels(n) + ",result=\"" + std::string(dns_result_names[r]) + '"',
                 d(n.results[r]));
  }
}

}  // namespace

std::string render_prometheus(const proxy_stats& s) {
  std::string out;
  render_process(out, s);
  render_listener_connections(out, s);
  render_listener_traffic(out, s);
  render_endpoints(out, s);
  render_queues(out, s);
  render_dns(out, s);
  return out;
}

namespace {

json::object endpoint_json(const endpoint_stats& e) {
  return {{"upstream", e.upstream},
          {"address", e.at.to_string()},
          {"name", e.name.empty() ? json::value(nullptr) : json::value(e.name)},
          {"state", to_string(e.mode)},
          {"weight", e.weight},
          {"effective_weight", e.effective_weight},
          {"healthy", e.healthy},
          {"usable", e.usable},
          {"active", e.active},
          {"connections", e.connections},
          {"connect_failures", e.connect_failures},
          {"bytes_up", e.bytes_up},
          {"bytes_down", e.bytes_down}};
}

}  // namespace

std::string render_stats_json(const proxy_stats& s, const std::vector<throughput_sample>& history) {
  json::object root;
  root["version"] = s.version;
  root["start_time"] = s.start_time;
  root["now"] = s.now;
  root["connections_active"] = s.sessions;
  root["pipes"] = {{"leased", s.pipes_leased}, {"idle", s.pipes_idle}};
  root["buffers_leased"] = s.buffers_leased;
  root["reloads"] = {{"applied", s.reloads}, {"refused", s.reloads_failed}};
  json::array listeners;
  for (const auto& l : s.listeners) {
    json::object closed, fallbacks;
    for (close_reason r : close_reasons) closed[to_string(r)] = l.closed[r];
    for (std::size_t i = 0; i < splice_fallback_reasons.size(); ++i)
      fallbacks[splice_fallback_reasons[i]] = l.fallbacks[i];
    listeners.push_back(json::object{{"name", l.name},
                                     {"bind", l.bind},
                                     {"destination", l.destination},
                                     {"accepted", l.accepted},
                                     {"active", l.active},
                                     {"bytes_up", l.bytes_up},
                                     {"bytes_down", l.bytes_down},
                                     {"spliced", l.spliced},
                                     {"copied", l.copied},
                                     {"closed", std::move(closed)},
                                     {"fallbacks", std::move(fallbacks)}});
  }
  root["listeners"] = std::move(listeners);
  json::array endpoints;
  for (const auto& e : s.endpoints) endpoints.push_back(endpoint_json(e));
  root["endpoints"] = std::move(endpoints);
  json::array queues;
  for (const auto& q : s.queues)
    queues.push_back(json::object{{"upstream", q.upstream},
                                  {"waiting", q.waiting},
                                  {"queue_full", q.refused_full},
                                  {"queue_timeout", q.refused_timeout},
                                  {"wait_seconds_sum", q.wait_sum}});
  root["queues"] = std::move(queues);
  json::array names;
  for (const auto& n : s.dns) {
    json::object results;
    for (std::size_t r = 0; r < dns_result_names.size(); ++r)
      results[dns_result_names[r]] = n.results[r];
    names.push_back(json::object{{"name", n.name},
                                 {"family", n.family},
                                 {"addresses", n.addresses},
                                 {"resolved", n.resolved},
                                 {"last", to_string(n.last)},
                                 {"results", std::move(results)}});
  }
  root["dns"] = std::move(names);
  json::array samples;
  for (const auto& h : history)
    samples.push_back(json::object{{"time", h.time}, {"up", h.up}, {"down", h.down}});
  root["history"] = std::move(samples);
  return json::serialize(root);
}

std::optional<std::string> render_upstreams_json(const proxy_stats& s,
                                                 std::optional<std::string_view> only) {
  json::array upstreams;
  for (const auto& e : s.endpoints) {
    if (only && e.upstream != *only) continue;
    if (upstreams.empty() || upstreams.back().at("name").as_string() != e.upstream)
      upstreams.push_back(json::object{{"name", e.upstream}, {"endpoints", json::array{}}});
    upstreams.back().at("endpoints").as_array().push_back(endpoint_json(e));
  }
  if (only) {
    if (upstreams.empty()) return std::nullopt;
    return json::serialize(upstreams.front());
  }
  return json::serialize(json::object{{"upstreams", std::move(upstreams)}});
}

}  // namespace zcproxy
