#include "zcproxy/relay.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>

#include "zcproxy/sys.hpp"

namespace zcproxy {
namespace asio = boost::asio;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// After this many bytes without waiting, yield so one fast connection cannot starve the others
// on its thread.
constexpr std::uint64_t yield_after_bytes = 4u << 20;
constexpr unsigned splice_flags =
    SPLICE_F_MOVE | SPLICE_F_NONBLOCK;  // never SPLICE_F_MORE: it corks

std::error_code errno_code(int e) {
  return {e, std::generic_category()};
}

}  // namespace

void relay_link::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  client_.cancel(ignored);
  upstream_.cancel(ignored);
}

const char* to_string(direction_end e) {
  switch (e) {
    case direction_end::eof:
      return "eof";
    case direction_end::reset:
      return "reset";
    case direction_end::stopped:
      return "stopped";
    case direction_end::splice_refused:
      return "splice_refused";
  }
  return "?";
}

const char* direction_result::engine() const {
  if (spliced && copied) return "splice+copy";
  return on_copy ? "copy" : "splice";
}

asio::awaitable<direction_result> relay(tcp::socket& from, tcp::socket& to, relay_resources& res,
                                        relay_link& link) {
  direction_result out;
  out.on_copy = res.engine == engine_mode::copy;
  const int src = from.native_handle();
  const int dst = to.native_handle();
  pipe_pool::lease pipe;      // held only while bytes are in flight
  buffer_pool::lease buffer;  // likewise, for the copy engine
  std::uint64_t since_wait = 0;

  auto fail = [&](direction_end end, int e) {
    out.end = end;
    out.error = errno_code(e);
    link.stop();
  };

  for (;;) {
    if (!pipe && !buffer) {
      // Idle: wait for bytes without holding a pipe or a buffer.
      auto [ec] = co_await from.async_wait(tcp::socket::wait_read, use_tuple);
      if (link.stopped()) {
        out.end = direction_end::stopped;
        break;
      }
      if (ec) {
        fail(direction_end::reset, ec.value());
        break;
      }
      since_wait = 0;
      if (!out.on_copy) {
        pipe = res.pipes.get();
        // Pool at its cap (or no fds for a pipe): this direction carries on with copy.
        if (!pipe) out.on_copy = true;
      }
      if (out.on_copy) buffer = res.buffers.get();
    }

    // Fill the stage. It is always empty here: each round flushes it whole before the next, so
    // an EAGAIN below means the socket is drained, never that the pipe is full.
    ssize_t n = out.on_copy ? ::read(src, buffer->data.get(), buffer->size)
                            : sys::splice(src, nullptr, pipe->write_fd(), nullptr, pipe->capacity(),
                                          splice_flags);
    if (n < 0) {
      const int e = errno;
      if (e == EINTR) continue;  // a signal interrupted us before anything moved
      if (e == EAGAIN || e == EWOULDBLOCK) {
        // Drained: give the stage back and wait for the next bytes.
        pipe.reset();
        buffer.reset();
        continue;
      }
      if (!out.on_copy && (e == EINVAL || e == ENOSYS)) {
        // This pair of fds cannot splice; nothing was consumed, so copy can take over losslessly,
        // if allowed and nothing has moved yet.
        pipe.reset();
        if (res.engine == engine_mode::automatic && out.bytes() == 0) {
          out.on_copy = true;
          continue;
        }
        fail(direction_end::splice_refused, e);
        break;
      }
      fail(direction_end::reset, e);  // ECONNRESET, ETIMEDOUT...: the source is gone
      break;
    }
    if (n == 0) {
      // FIN from the source; the stage is empty, so nothing is left behind it: forward it and let
      // the other direction run on (half-close).
      ::shutdown(dst, SHUT_WR);
      out.end = direction_end::eof;
      break;
    }
    if (!out.on_copy) pipe->level = static_cast<std::size_t>(n);

    // Flush the stage whole. Short writes are normal; track what is left exactly.
    std::size_t left = static_cast<std::size_t>(n);
    while (left > 0) {
      ssize_t m = out.on_copy
                      ? ::send(dst, buffer->data.get() + (n - left), left, MSG_NOSIGNAL)
                      : sys::splice(pipe->read_fd(), nullptr, dst, nullptr, left, splice_flags);
      if (m > 0) {
        left -= static_cast<std::size_t>(m);
        if (!out.on_copy) pipe->level = left;
        continue;
      }
      const int e = errno;
      if (m < 0 && e == EINTR) continue;
      if (m < 0 && (e == EAGAIN || e == EWOULDBLOCK)) {
        // The destination's send buffer is full: backpressure, wait for room.
        auto [ec] = co_await to.async_wait(tcp::socket::wait_write, use_tuple);
        if (link.stopped()) {
          out.end = direction_end::stopped;
          break;
        }
        if (!ec) continue;
        fail(direction_end::reset, ec.value());
        break;
      }
      // EPIPE/ECONNRESET: the destination is gone. The pipe still holds bytes, so its lease
      // closes it instead of pooling it.
      fail(direction_end::reset, m < 0 ? e : EPIPE);
      break;
    }
    (out.on_copy ? out.copied : out.spliced) += static_cast<std::uint64_t>(n) - left;
    if (left > 0) break;  // failed or stopped mid-flush; out.end says which

    since_wait += static_cast<std::uint64_t>(n);
    if (since_wait >= yield_after_bytes) {
      since_wait = 0;
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      if (link.stopped()) {
        out.end = direction_end::stopped;
        break;
      }
    }
  }
  co_return out;
}

}  // namespace zcproxy
