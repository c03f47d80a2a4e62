// A fallback_response file, read whole into a sealed memfd: what clients get is the file as
// loaded, whatever happens to it on disk until the next reload, and sendfile(2) can send it.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "checker.hpp"

namespace zcproxy {

fallback_body::~fallback_body() {
  ::close(fd);
}

namespace detail {
namespace {

// The file's bytes, at most one more than max_fallback_bytes (enough to know it is too large).
std::optional<std::string> read_file(const std::string& file, std::string& why) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(file.c_str(), "rb"), &std::fclose);
  if (!f) {
    why = file + ": " + std::strerror(errno);
    return std::nullopt;
  }
  std::string bytes;
  char buffer[8192];
  std::size_t n;
  while (bytes.size() <= max_fallback_bytes &&
         (n = std::fread(buffer, 1, sizeof buffer, f.get())) > 0)
    bytes.append(buffer, n);
  if (std::ferror(f.get())) {
    why = file + ": " + std::strerror(errno);  // EISDIR
    return std::nullopt;
  }
  return bytes;
}

}  // namespace

std::shared_ptr<const fallback_body> load_fallback_body(const std::string& file, std::string& why) {
  // A regular file only: opening a FIFO would block the load (and a reload) for a writer.
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    why = file + ": " + std::strerror(errno);
    return nullptr;
  }
  if (S_ISDIR(st.st_mode)) {
    why = file + ": Is a directory";
    return nullptr;
  }
  if (!S_ISREG(st.st_mode)) {
    why = file + " is not a regular file";
    return nullptr;
  }
  auto bytes = read_file(file, why);
  if (!bytes) return nullptr;
  if (bytes->size() > max_fallback_bytes) {
    why = file + " is larger than 1 MiB";
    return nullptr;
  }
  const int fd = ::memfd_create("zcproxy-fallback", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    why = std::string("memfd_create: ") + std::strerror(errno);
    return nullptr;
  }
  auto body = std::make_shared<const fallback_body>(fd, bytes->size());
  for (std::size_t at = 0; at < bytes->size();) {
    const ssize_t w = ::write(fd, bytes->data() + at, bytes->size() - at);
    if (w < 0 && errno == EINTR) continue;  // a signal before anything was written: again
    if (w <= 0) {
      why = std::string("memfd write: ") + std::strerror(errno);
      return nullptr;
    }
    at += static_cast<std::size_t>(w);
  }
  // Sealed: nothing can change the bytes, not even this process by mistake.
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    why = std::string("sealing its copy: ") + std::strerror(errno);
    return nullptr;
  }
  return body;
}

}  // namespace detail
}  // namespace zcproxy
