// Logging: a main logger (stderr) and the access log (one line per connection, to stdout or to
// log.access_file). Every function here is safe to call from any thread.
//
// The access log is asynchronous: log_access formats the line on the caller's thread and queues
// it for a thread of its own that writes it, so a slow disk or a blocked stdout never stalls a
// worker. The queue holds access_queue_size lines; when it is full the oldest queued line is
// dropped (spdlog's overrun_oldest: relaying never waits for the log), and only then. The count
// of dropped lines is logged at shutdown.
#pragma once

#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "zcproxy/close_reason.hpp"
#include "zcproxy/enum_names.hpp"
#include "zcproxy/log_config.hpp"

namespace zcproxy {

constexpr std::size_t access_queue_size = 8192;

// (Re)configure both loggers; callable more than once (at start-up, on reload, and tests run
// several servers). The access file is opened (appending) when it is not the one already open.
// Throws std::runtime_error naming the file when it cannot be opened: the access log's settings
// then stay as they were (the main log's level still applies).
void setup_logging(const log_config& cfg);

spdlog::logger& main_log();

// What an access-log line tells of its connection: its end (the final line, one per
// connection), or, as log.on_connect and log.interval ask, that its upstream connection is made,
// or how far it has got while it relays (Envoy's flush_access_log_on_connected and
// access_log_flush_interval).
enum class access_event {
  close,    // the final line: as it always was, with no `event` field
  connect,  // "event=connect": client, listener, sni, upstream, endpoint, connect_ms
  interim,  // "event=interim": the final line's fields so far, without close
};

inline constexpr std::array<std::string_view, 3> access_event_names{"close", "connect", "interim"};
static_assert(all_named(access_event_names));

constexpr std::string_view to_string(access_event e) {
  return name_of(access_event_names, e);
}

// One connection, as the access log writes it. An empty sni, upstream, endpoint or engine means
// none ("-" in text, null in JSON).
struct access_record {
  std::string client;            // "127.0.0.1:58590"; a PROXY header's source when there was one
  std::string listener;          // its name
  std::string sni;               // the server name a routed listener's client asked for
  std::string upstream;          // its name
  std::string endpoint;          // the address connected to
  std::uint64_t bytes_up = 0;    // client -> upstream (so far, in an interim line)
  std::uint64_t bytes_down = 0;  // upstream -> client
  std::uint64_t duration_ms = 0;
  std::string engine_up;  // "splice", "copy" or "splice+copy"
  std::string engine_down;
  close_reason close = close_reason::eof;       // why it ended
  std::chrono::system_clock::time_point start;  // when it was accepted
  access_event event = access_event::close;     // which line this is
  std::uint64_t connect_ms = 0;                 // a connect line's: how long connecting took
};

// Whether log_access writes anything (log.access_log); lets a caller skip building the record.
bool access_log_enabled();
// Queue one access-log line, in the configured format, timed now.
void log_access(const access_record& r);

// The line for `r` written at `now`, without the newline. Text: exactly
//   2026-11-25T12:02:23.640 access client=... listener=... sni=... upstream=... endpoint=...
//   bytes_up=... bytes_down=... duration_ms=... engine_up=... engine_down=... close=...
// (one line; local time). JSON: one object with "time" (now) and "start", both RFC 3339 in UTC
// with milliseconds ("2026-11-25T17:02:23.640Z"), then the fields above in that order, numbers
// as JSON numbers. That is the final line (access_event::close). The others say which they are
// first ("event=connect"/"event=interim" after "access"; "event" after "time" in JSON): a connect
// line names client to endpoint, then connect_ms; an interim line is the final one without close.
std::string format_access(const access_record& r, access_log_format format,
                          std::chrono::system_clock::time_point now);

// Reopen the access file at its path (appending; a new file if it was renamed away), for
// logrotate: lines still queued go to the new file. Logs the outcome; when reopening fails the
// old file stays in use. With the access log on stdout (or off) it only says so.
void reopen_access_log();

// Write out every queued access-log line and stop the access log's thread; for the end of the
// process, once no session can log any more.
void shutdown_logging();

}  // namespace zcproxy
