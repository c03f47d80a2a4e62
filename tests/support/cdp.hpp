// Test support: Debian's headless Chromium driven over the Chrome DevTools Protocol, so a test can
// look at a page as a browser shows it. The browser runs in its own process group with a fresh
// profile in a temporary directory, resolves no host name and reaches nothing but loopback (every
// other address goes to a proxy that refuses connections), so neither a page nor the browser's own
// background services reach anything outside; it is closed (killed, if it must be) before the
// directory goes away. Not thread-safe: one thread drives a browser and its pages. Asio and Beast
// stay inside cdp.cpp.
#pragma once

#include <sys/types.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "support/process.hpp"

namespace test::cdp {

using namespace std::chrono_literals;

// The browser did not start, a command failed, or an answer did not come in time.
struct error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline constexpr const char* chromium_binary = "/usr/bin/chromium";
bool chromium_installed();

// A headless Chromium and one DevTools connection to it.
class browser {
 public:
  // Throws cdp::error when the binary is missing or the DevTools endpoint does not come up
  // within `timeout` (the message carries the browser's output).
  explicit browser(std::chrono::milliseconds timeout = 20s);
  ~browser();  // Browser.close; SIGKILL to the process group if it has not exited within 10 s
  browser(const browser&) = delete;
  browser& operator=(const browser&) = delete;

  // Send a command (to a page's session when `session` is given) and wait for its result,
  // keeping the events that arrive meanwhile. Throws cdp::error on an error reply or when no
  // reply comes within `timeout`; after a timeout the connection is closed.
  boost::json::object call(std::string_view method, boost::json::object params = {},
                           std::string_view session = {}, std::chrono::milliseconds timeout = 10s);
  // The params of the first event `method` (of `session`, when given), kept or yet to come.
  boost::json::object wait_for_event(std::string_view method, std::string_view session = {},
                                     std::chrono::milliseconds timeout = 10s);
  // The params of every event `method` (of `session`, when given) kept so far, oldest first; they
  // are no longer kept. Reads nothing more from the browser.
  std::vector<boost::json::object> take_events(std::string_view method,
                                               std::string_view session = {});
  // Forget the events kept so far.
  void drop_events() { events_.clear(); }
  // What the browser printed so far.
  std::string log() const { return slurp(log_); }

 private:
  // Start the browser with `profile` and connect to it, within `timeout`; throws cdp::error.
  void launch(std::chrono::milliseconds timeout, const std::string& profile);
  boost::json::object read(std::chrono::steady_clock::time_point deadline, std::string_view what);
  void keep(boost::json::object event);
  void stop();

  temp_dir dir_;  // declared first: removed after the browser is gone
  std::string log_;
  pid_t pid_ = -1;  // also the process group's id
  struct connection;
  std::unique_ptr<connection> connection_;
  std::int64_t next_id_ = 1;
  std::deque<boost::json::object> events_;
};

// A tab attached in flat mode (its commands carry its session id), showing `url` once its load
// event has fired. Its Page and Network domains are on from before the navigation, so the
// browser keeps its Network events (every request it makes, the document's too) for
// take_events. Closed when this goes away.
class page {
 public:
  page(browser& b, const std::string& url, std::chrono::milliseconds timeout = 15s);
  ~page();
  page(const page&) = delete;
  page& operator=(const page&) = delete;

  // The value of a JavaScript expression (awaited when it is a promise), as JSON. Throws
  // cdp::error when it throws.
  boost::json::value evaluate(const std::string& expression);
  // A PNG of the viewport.
  std::vector<unsigned char> screenshot();
  // This tab's events, as browser::take_events and browser::wait_for_event.
  std::vector<boost::json::object> take_events(std::string_view method) {
    return browser_.take_events(method, session_);
  }
  boost::json::object wait_for_event(std::string_view method,
                                     std::chrono::milliseconds timeout = 10s) {
    return browser_.wait_for_event(method, session_, timeout);
  }

 private:
  browser& browser_;
  std::string target_;
  std::string session_;
};

}  // namespace test::cdp
