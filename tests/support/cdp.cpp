#include "support/cdp.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/websocket.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <sstream>

#include "support/net.hpp"

namespace test::cdp {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace json = boost::json;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

namespace {

// Keep at most this many unclaimed events: a test waits for recent ones only.
constexpr std::size_t max_kept_events = 1000;

std::string seconds(std::chrono::milliseconds d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::seconds>(d).count()) + " s";
}

// The last `n` characters of a log: enough to see why a browser died.
std::string tail(const std::string& text, std::size_t n = 4000) {
  return text.size() > n ? "..." + text.substr(text.size() - n) : text;
}

// The processes of group `pgid`: "pid comm state wchan" each, to see where a launch hangs.
std::string group_state(pid_t pgid) {
  std::string out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = slurp("/proc/" + pid + "/stat");
    const auto close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream rest(stat.substr(close_paren + 2));
    std::string state;
    long ppid = 0, group = 0;
    rest >> state >> ppid >> group;
    if (group != pgid) continue;
    const auto open_paren = stat.find('(');
    out += (out.empty() ? "" : ", ") + pid + " " +
           stat.substr(open_paren + 1, close_paren - open_paren - 1) + " " + state + " " +
           slurp("/proc/" + pid + "/wchan");
  }
  return out.empty() ? "none" : out;
}

// Whether the child has exited, without reaping it: while it is a zombie, its pid still names
// its process group, so the group can be killed safely.
bool exited(pid_t pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == pid;
}

const json::string& string_field(const json::object& o, std::string_view key,
                                 std::string_view what) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_string())
    throw error(std::string(what) + ": no string \"" + std::string(key) + "\" in " +
                json::serialize(o));
  return v->as_string();
}

json::object params_of(json::object& message) {
  json::value* p = message.if_contains("params");
  return p && p->is_object() ? std::move(p->as_object()) : json::object{};
}

// Whether `m` is the event `method` (of `session`, when given).
bool event_matches(const json::object& m, std::string_view method, std::string_view session) {
  const json::value* name = m.if_contains("method");
  if (!name || !name->is_string() || name->as_string() != method) return false;
  if (session.empty()) return true;
  const json::value* s = m.if_contains("sessionId");
  return s && s->is_string() && s->as_string() == session;
}

}  // namespace

bool chromium_installed() {
  return ::access(chromium_binary, X_OK) == 0;
}

// The DevTools websocket. Every operation runs on this thread's io_context with a deadline, so a
// browser that stops answering fails the test instead of hanging it.
struct browser::connection {
  asio::io_context io;
  websocket::stream<tcp::socket> ws{io};
  beast::flat_buffer buffer;

  // Start an asynchronous operation and run it until it completes or `deadline` passes; then
  // the socket is closed, which ends the operation, and every later one fails at once.
  template <class Start>
  beast::error_code run(Start start, clock_type::time_point deadline) {
    // Shared with the handler: it may run after a timeout, once the socket is closed.
    auto result = std::make_shared<std::optional<beast::error_code>>();
    start([result](beast::error_code ec, auto&&...) { *result = ec; });
    io.restart();
    io.run_until(deadline);
    if (*result) return **result;
    beast::error_code ignored;
    ws.next_layer().close(ignored);
    io.restart();
    io.run_for(std::chrono::seconds(1));
    return beast::error::timeout;
  }
};

browser::browser(std::chrono::milliseconds timeout) : log_(dir_.file("chromium.log")) {
  if (!chromium_installed())
    throw error(std::string(chromium_binary) +
                " is missing: install Debian's chromium package (apt-get install chromium)");
  // Chromium has been seen, rarely and only on a loaded machine, to print nothing and not
  // listen for 20 s: such a launch is killed and made once more, with a fresh profile, and said.
  // What the test asserts is not touched: only the browser's start is tried twice.
  try {
    launch(timeout, dir_.path + "/profile");
  } catch (const error& e) {
    std::fprintf(stderr, "cdp: the browser's first launch failed, launching again: %s\n", e.what());
    launch(timeout, dir_.path + "/profile-2");
  }
}

void browser::launch(std::chrono::milliseconds timeout, const std::string& profile) {
  std::vector<std::string> args{
      chromium_binary, "--headless=new", "--disable-gpu", "--remote-debugging-port=0",
      "--user-data-dir=" + profile, "--window-size=1280,1000", "--hide-scrollbars",
      "--no-first-run", "--no-default-browser-check", "--disable-extensions",
      "--disable-default-apps", "--disable-sync", "--disable-background-networking",
      "--disable-component-update", "--disable-breakpad", "--metrics-recording-only",
      "--password-store=basic", "--mute-audio",
      // No host name resolves (a literal address is not looked up, and 127.0.0.1 is kept as
      // itself): the background services the browser has of its own reach nothing outside.
      "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
      // Nor does a literal address other than loopback: everything goes through a proxy at a
      // port with nothing listening (a failed proxy connection does not fall back to direct),
      // except loopback, which Chromium always connects to directly.
      "--proxy-server=http://127.0.0.1:" + std::to_string(dead_port()), "about:blank"};
  // Chromium's sandbox refuses to run as root.
  if (::geteuid() == 0) args.insert(args.begin() + 1, "--no-sandbox");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const long max_fd = ::sysconf(_SC_OPEN_MAX);

  pid_ = ::fork();
  if (pid_ < 0) throw error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {  // only async-signal-safe calls until exec
    // Its own process group, so helpers it leaves behind can be killed with it.
    ::setpgid(0, 0);
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    // Nothing else: Asio opens the in-process proxy's sockets without close-on-exec, and a copy
    // kept open in the browser would keep a listener listening and hold back a closed socket's
    // FIN.
    if (::close_range(3, ~0U, 0) != 0)
      for (long i = 3; i < max_fd; ++i) ::close(static_cast<int>(i));
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  // Here too: whichever of the two runs first, the group exists before stop() signals it.
  ::setpgid(pid_, pid_);

  try {
    // Chromium writes its DevTools port and the browser's websocket path here once it listens.
    const std::string active_port = profile + "/DevToolsActivePort";
    unsigned port = 0;
    std::string path;
    const std::string_view path_prefix = "/devtools/browser/";
    const bool listening = wait_until(
        [&] {
          if (exited(pid_)) return true;
          std::istringstream in(slurp(active_port));
          path.clear();
          in >> port >> path;
          // The file may be caught half written: a whole path ends in a 36-character UUID.
          return port > 0 && path.starts_with(path_prefix) &&
                 path.size() == path_prefix.size() + 36;
        },
        timeout);
    if (!listening || exited(pid_))
      throw error(std::string(chromium_binary) + (exited(pid_) ? " exited" : " did not listen") +
                  " within " + seconds(timeout) + "; its processes: " + group_state(pid_) +
                  "; its output:\n" + tail(log()));

    connection_ = std::make_unique<connection>();
    auto& c = *connection_;
    const auto deadline = clock_type::now() + std::chrono::seconds(10);
    const tcp::endpoint endpoint(asio::ip::make_address_v4("127.0.0.1"),
                                 static_cast<std::uint16_t>(port));
    if (auto ec = c.run([&](auto h) { c.ws.next_layer().async_connect(endpoint, h); }, deadline))
      throw error("connect to the DevTools port " + std::to_string(port) + ": " + ec.message());
    const std::string host = "127.0.0.1:" + std::to_string(port);
    if (auto ec = c.run([&](auto h) { c.ws.async_handshake(host, path, h); }, deadline))
      throw error("DevTools websocket handshake at " + host + path + ": " + ec.message());
    c.ws.read_message_max(64 << 20);  // screenshots arrive as one base64 message
    c.ws.text(true);
  } catch (...) {
    stop();
    throw;
  }
}

browser::~browser() {
  stop();
}

void browser::stop() {
  if (pid_ <= 0) return;
  if (connection_) {
    try {
      call("Browser.close", {}, {}, std::chrono::seconds(5));
    } catch (const std::exception&) {
      // The browser may drop the connection before it answers: it is closing either way.
    }
    connection_.reset();
  }
  wait_until([&] { return exited(pid_); }, std::chrono::seconds(10));
  // The browser, if it is still up, and any helper it left in its group.
  ::kill(-pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

json::object browser::read(clock_type::time_point deadline, std::string_view what) {
  if (!connection_) throw error(std::string(what) + ": not connected");
  auto& c = *connection_;
  c.buffer.clear();
  if (auto ec = c.run([&](auto h) { c.ws.async_read(c.buffer, h); }, deadline))
    throw error(std::string(what) + ": " +
                (ec == beast::error::timeout ? "no answer from the browser in time"
                                             : "reading from the browser: " + ec.message()));
  boost::system::error_code ec;
  json::value v = json::parse(beast::buffers_to_string(c.buffer.data()), ec);
  if (ec || !v.is_object()) throw error(std::string(what) + ": the browser sent no JSON object");
  return std::move(v.as_object());
}

void browser::keep(json::object event) {
  events_.push_back(std::move(event));
  if (events_.size() > max_kept_events) events_.pop_front();
}

json::object browser::call(std::string_view method, json::object params, std::string_view session,
                           std::chrono::milliseconds timeout) {
  if (!connection_) throw error(std::string(method) + ": not connected");
  auto& c = *connection_;
  const auto deadline = clock_type::now() + timeout;
  const std::int64_t id = next_id_++;
  json::object message{{"id", id}, {"method", method}, {"params", std::move(params)}};
  if (!session.empty()) message["sessionId"] = session;
  const std::string text = json::serialize(message);
  if (auto ec = c.run([&](auto h) { c.ws.async_write(asio::buffer(text), h); }, deadline))
    throw error(std::string(method) + ": sending to the browser: " + ec.message());
  for (;;) {
    json::object m = read(deadline, method);
    const json::value* answer_to = m.if_contains("id");
    if (!answer_to) {  // an event
      keep(std::move(m));
      continue;
    }
    // Commands go one at a time and a timeout closes the connection: no other answer comes.
    if (!answer_to->is_int64() || answer_to->as_int64() != id) continue;
    if (const json::value* e = m.if_contains("error"))
      throw error(std::string(method) + " failed: " + json::serialize(*e));
    json::value* result = m.if_contains("result");
    return result && result->is_object() ? std::move(result->as_object()) : json::object{};
  }
}

std::vector<json::object> browser::take_events(std::string_view method, std::string_view session) {
  std::vector<json::object> taken;
  for (auto it = events_.begin(); it != events_.end();) {
    if (event_matches(*it, method, session)) {
      taken.push_back(params_of(*it));
      it = events_.erase(it);
    } else {
      ++it;
    }
  }
  return taken;
}

json::object browser::wait_for_event(std::string_view method, std::string_view session,
                                     std::chrono::milliseconds timeout) {
  auto matches = [&](const json::object& m) { return event_matches(m, method, session); };
  for (auto it = events_.begin(); it != events_.end(); ++it)
    if (matches(*it)) {
      json::object params = params_of(*it);
      events_.erase(it);
      return params;
    }
  const auto deadline = clock_type::now() + timeout;
  const std::string what = "waiting for " + std::string(method);
  for (;;) {
    json::object m = read(deadline, what);
    if (matches(m)) return params_of(m);
    if (m.contains("method")) keep(std::move(m));
  }
}

page::page(browser& b, const std::string& url, std::chrono::milliseconds timeout) : browser_(b) {
  target_ = string_field(b.call("Target.createTarget", {{"url", "about:blank"}}), "targetId",
                         "Target.createTarget");
  session_ =
      string_field(b.call("Target.attachToTarget", {{"targetId", target_}, {"flatten", true}}),
                   "sessionId", "Target.attachToTarget");
  b.call("Page.enable", {}, session_);
  b.call("Network.enable", {}, session_);
  b.drop_events();  // about:blank's: the load event awaited below is the page's own
  const json::object navigated = b.call("Page.navigate", {{"url", url}}, session_, timeout);
  if (const json::value* e = navigated.if_contains("errorText"))
    throw error("navigating to " + url + ": " + json::serialize(*e));
  b.wait_for_event("Page.loadEventFired", session_, timeout);
}

page::~page() {
  try {
    browser_.call("Target.closeTarget", {{"targetId", target_}}, {}, std::chrono::seconds(5));
  } catch (const std::exception&) {
    // The browser is going away with the test; closing the tab is a courtesy.
  }
}

json::value page::evaluate(const std::string& expression) {
  json::object r = browser_.call(
      "Runtime.evaluate",
      {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}}, session_);
  if (const json::value* details = r.if_contains("exceptionDetails")) {
    std::string why = json::serialize(*details);
    if (const auto* ex = details->as_object().if_contains("exception"); ex && ex->is_object())
      if (const auto* d = ex->as_object().if_contains("description"); d && d->is_string())
        why = std::string(d->as_string());
    throw error("the page threw: " + why + "\nevaluating: " + expression);
  }
  json::value* result = r.if_contains("result");
  if (!result || !result->is_object()) return nullptr;
  json::value* value = result->as_object().if_contains("value");
  return value ? std::move(*value) : json::value(nullptr);  // undefined: no value
}

std::vector<unsigned char> page::screenshot() {
  const json::object r = browser_.call("Page.captureScreenshot", {{"format", "png"}}, session_,
                                       std::chrono::seconds(20));
  const json::string& data = string_field(r, "data", "Page.captureScreenshot");
  namespace base64 = beast::detail::base64;
  std::vector<unsigned char> png(base64::decoded_size(data.size()));
  png.resize(base64::decode(png.data(), data.data(), data.size()).first);
  return png;
}

}  // namespace test::cdp
