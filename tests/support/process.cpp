#include "support/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "support/net.hpp"

namespace test {

temp_dir::temp_dir() {
  char tmpl[] = "/tmp/zcproxy-test-XXXXXX";
  path = ::mkdtemp(tmpl);
}

temp_dir::~temp_dir() {
  // In-process, not `rm -rf`: a unit test starts no process. A failure leaves litter in /tmp only.
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

std::string temp_dir::file(const std::string& name, const std::string& text) const {
  std::string p = path + "/" + name;
  if (!text.empty()) std::ofstream(p) << text;
  return p;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

std::size_t open_fds(pid_t pid) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"))
    ++n;
  return n;
}

std::size_t rss_kib(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  return 0;
}

std::vector<std::string> status_fields(pid_t pid, const std::string& key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key + ":", 0) == 0) {
      std::istringstream in(line.substr(key.size() + 1));
      std::vector<std::string> out;
      for (std::string w; in >> w;) out.push_back(w);
      return out;
    }
  return {};
}

process::process(std::vector<std::string> args, const std::string& out, const std::string& err,
                 rlim_t max_fds) {
  args.insert(args.begin(), ZCPROXY_BINARY);
  start(args, "/dev/null", out, err, max_fds);
}

process::process(std::vector<std::string> args, const std::string& out, const std::string& err,
                 const child_setup& setup) {
  args.insert(args.begin(), ZCPROXY_BINARY);
  start(args, "/dev/null", out, err, 0, &setup);
}

process::process(const std::string& program, std::vector<std::string> args, const std::string& in,
                 const std::string& out, const std::string& err) {
  args.insert(args.begin(), program);
  start(args, in, out, err, 0);
}

void process::start(std::vector<std::string>& args, const std::string& in, const std::string& out,
                    const std::string& err, rlim_t max_fds, const child_setup* setup) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The environment is made before the fork (the child may only make async-signal-safe calls);
  // LISTEN_PID's digits are written in the child, which alone knows its pid.
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  const int listen_fd = setup ? setup->listen_fd : -1;
  if (setup) env.insert(env.end(), setup->env.begin(), setup->env.end());
  if (listen_fd >= 0) env.push_back("LISTEN_PID=" + std::string(20, '\0'));
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  char* listen_pid = listen_fd >= 0 ? env.back().data() + 11 : nullptr;
  pid = ::fork();
  if (pid == 0) {  // only async-signal-safe calls until exec
    int i = ::open(in.c_str(), O_RDONLY);
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(i, 0);
    ::dup2(o, 1);
    ::dup2(e, 2);
    // Nothing else crosses the exec: a test's in-process proxy opens its sockets without
    // close-on-exec, and a child holding a copy would keep a closed connection's FIN from going.
    if (listen_fd >= 0) {
      char digits[20];
      int n = 0;
      for (pid_t p = ::getpid(); p > 0; p /= 10) digits[n++] = static_cast<char>('0' + p % 10);
      for (int k = 0; k < n; ++k) listen_pid[k] = digits[n - 1 - k];
      if (listen_fd != 3)
        ::dup2(listen_fd, 3);  // dup2 clears close-on-exec on fd 3
      else
        ::fcntl(3, F_SETFD, 0);
    }
    ::close_range(listen_fd >= 0 ? 4 : 3, ~0U, 0);
    if (max_fds) {
      rlimit l{max_fds, max_fds};
      ::setrlimit(RLIMIT_NOFILE, &l);
    }
    ::execvpe(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
}

int process::wait(std::chrono::milliseconds deadline) {
  int status = 0;
  bool exited = wait_until([&] { return ::waitpid(pid, &status, WNOHANG) == pid; }, deadline);
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    pid = -1;
    return -1;
  }
  pid = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

process::~process() {
  if (pid > 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
}

namespace {

std::string one_listener(std::uint16_t upstream_port, const std::string& head) {
  return head +
         "listeners:\n  - { name: web, bind: \"127.0.0.1:0\", upstream: app }\n"
         "upstreams:\n  app: { endpoints: [\"127.0.0.1:" +
         std::to_string(upstream_port) + "\"] }\n";
}

}  // namespace

running_proxy::running_proxy(const temp_dir& d, std::uint16_t upstream_port,
                             const std::string& head, rlim_t max_fds)
    : running_proxy(d, one_listener(upstream_port, head), "web", max_fds) {}

running_proxy::running_proxy(const temp_dir& d, const std::string& yaml,
                             const std::string& listener, rlim_t max_fds,
                             const std::vector<std::string>& more_args)
    : config(d.file("zcproxy.yaml", yaml)),
      err(d.file("err")),
      proc(
          [&] {
            std::vector<std::string> args{"-c", config};
            args.insert(args.end(), more_args.begin(), more_args.end());
            return args;
          }(),
          d.file("out"), err, max_fds) {
  REQUIRE(proc.pid > 0);
  std::smatch m;
  const std::regex listening("listener " + listener + R"( on 127\.0\.0\.1:(\d+))");
  std::string text;
  REQUIRE(wait_until([&] {
    text = slurp(err);
    return std::regex_search(text, m, listening);
  }));
  port = static_cast<std::uint16_t>(std::stoi(m[1]));
}

std::uint16_t running_proxy::port_of(const std::string& what) const {
  const std::regex line(what + R"( on 127\.0\.0\.1:(\d+))");
  std::smatch m;
  std::string text;
  REQUIRE(wait_until([&] {
    text = log();
    return std::regex_search(text, m, line);
  }));
  return static_cast<std::uint16_t>(std::stoi(m[1]));
}

}  // namespace test
