// A listener's fallback_response: what a client gets, instead of a reset, when no endpoint of its
// upstream could be reached.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <string>

#include "session_state.hpp"
#include "zcproxy/deadline.hpp"
#include "zcproxy/sys.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy::detail {
namespace asio = boost::asio;

namespace {

// The lingering close's bounds: a second, and 1 MiB of what the client sends dropped, are enough
// for a client to read the response and close; past them, one that keeps sending would hold its
// session.
constexpr std::chrono::milliseconds linger_limit{1000};
constexpr std::size_t linger_max_bytes = 1 << 20;

}  // namespace

void reset_on_close(stream_socket& s) {
  const linger abort_on_close{1, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
}

// The body's bytes go to the client by sendfile(2) from its sealed memfd (no copy through user
// space), or by a plain write of the same bytes where sendfile is refused, all within `limit`.
// Then the end of the stream, and a lingering close: the client's unread request would otherwise
// turn the close into a reset, which can destroy the response before the client reads it.
asio::awaitable<std::size_t> send_fallback(session_state& s, const fallback_body& body,
                                           std::chrono::milliseconds limit) {
  const int out = s.client.native_handle();
  off_t offset = 0;
  auto left = [&] { return body.size - static_cast<std::size_t>(offset); };
  s.timer->expires_after(limit);
  while (left() > 0) {
    const ssize_t n = sys::sendfile(out, body.fd, &offset, left());
    if (n > 0) continue;  // sendfile advanced offset; a short write is normal
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The client's socket buffer is full: wait for room.
      auto r = co_await within(s.client.async_wait(stream_socket::wait_write, use_tuple), *s.timer);
      if (!r || std::get<0>(*r.done) || s.shutting_down) co_return offset;
      continue;
    }
    if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
      // This kernel or socket cannot sendfile: the same bytes from user space.
      std::string rest(left(), '\0');
      if (::pread(body.fd, rest.data(), rest.size(), offset) != static_cast<ssize_t>(rest.size()))
        co_return offset;
      auto r =
          co_await within(asio::async_write(s.client, asio::buffer(rest), use_tuple), *s.timer);
      if (!r || std::get<0>(*r.done)) co_return offset;
      offset = static_cast<off_t>(body.size);
      break;
    }
    co_return offset;  // EPIPE, ECONNRESET (the client is gone); 0: the body cannot shrink
  }
  boost::system::error_code ec;
  s.client.shutdown(stream_socket::shutdown_send, ec);
  // Lingering close: read and drop what the client sends until it closes, for up to a second.
  s.timer->expires_after(std::min(limit, linger_limit));
  std::array<char, 4096> sink;
  for (std::size_t drained = 0; drained < linger_max_bytes;) {
    auto r = co_await within(s.client.async_read_some(asio::buffer(sink), use_tuple), *s.timer);
    if (!r || std::get<0>(*r.done)) break;
    drained += std::get<1>(*r.done);
  }
  co_return offset;
}

}  // namespace zcproxy::detail
