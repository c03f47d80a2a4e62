#include "zcproxy/relay.hpp"

#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <array>
#include <limits>
#include <optional>
#include <cerrno>
#include <cstring>
#include <tuple>

#include "zcproxy/sys.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy {
namespace asio = boost::asio;

namespace {

// After this many bytes without waiting, yield so one fast connection cannot starve the others
// on its thread.
constexpr std::uint64_t yield_after_bytes = 4u << 20;
// The copy engine waits for bytes by reading up to this many into the direction's own small
// buffer: Asio's async_wait re-arms the socket with epoll_ctl on every wait, a read does not, and
// a small message is moved without a pool buffer's round trip. Kept small: it is pinned for the
// connection's life.
constexpr std::size_t first_read_size = 1024;
constexpr unsigned splice_flags =
    SPLICE_F_MOVE | SPLICE_F_NONBLOCK;  // never SPLICE_F_MORE: it corks

std::error_code errno_code(int e) {
  return {e, std::generic_category()};
}

bool at_urgent_mark(int fd) {
  int at_mark = 0;
  return ::ioctl(fd, SIOCATMARK, &at_mark) == 0 && at_mark == 1;
}

}  // namespace

void relay_link::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  client_.cancel(ignored);
  upstream_.cancel(ignored);
  for (auto* t : timers_) t->cancel();
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

engine_mode engine_for(engine_mode configured, const address& client_peer,
                       const stream_socket& client, const address& upstream_peer,
                       const stream_socket& upstream) {
  if (configured != engine_mode::adaptive) return configured;
  auto on_this_host = [](const address& peer, const stream_socket& s) {
    if (peer.local) return true;
    boost::system::error_code ec;
    if (asio::ip::make_address(peer.ip, ec).is_loopback() && !ec) return true;
    const auto own = local_of(s);
    return own && !own->local && own->ip == peer.ip;
  };
  return on_this_host(client_peer, client) && on_this_host(upstream_peer, upstream)
             ? engine_mode::copy
             : engine_mode::automatic;
}

asio::awaitable<direction_result> relay(stream_socket& from, stream_socket& to, relay_resources& res,
                                        engine_mode engine, relay_link& link,
                                        token_bucket* limit, byte_meter meter, mirror* shadow) {
  direction_result out;
  out.on_copy = engine == engine_mode::copy;
  const int src = from.native_handle();
  const int dst = to.native_handle();
  pipe_pool::lease pipe;      // held only while bytes are in flight
  buffer_pool::lease buffer;  // likewise, for copy rounds
  // Whether the source may hold bytes not tried since its last EAGAIN. Readiness comes as edges
  // (epoll EPOLLET): wait only after an EAGAIN, or an edge that came before the wait is lost.
  bool readable = false;
  bool urgent = false;  // the source sits at a TCP urgent byte, which splice never passes
  std::uint64_t since_wait = 0;
  std::optional<asio::steady_timer> limit_timer;  // waits for the rate limit's tokens
  if (limit) {
    limit_timer.emplace(from.get_executor());
    link.add_timer(&*limit_timer);
  }
  std::array<char, first_read_size> first;  // copy engine: what the wait read (first_n bytes)
  std::size_t first_n = 0;
  bool first_pending = false;

  // A failing source breaks the connection both ways: stop the other direction too, and pass the
  // reset on to the destination's peer (closing with linger 0 sends RST, not a FIN that would
  // make a cut-off stream look complete). A failing destination ends only this direction: the
  // other one reads from that same socket and still delivers what it holds (an early reply, say)
  // before it meets the error itself.
  auto end_with = [&](direction_end end, int e, bool source_failed) {
    out.end = end;
    out.error = errno_code(e);
    if (!source_failed) {
      if (e == ECONNRESET || e == EPIPE) link.peer_reset(dst);
      return;
    }
    const linger abort_on_close{1, 0};
    ::setsockopt(dst, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
    link.stop();
  };

  for (;;) {
    if (!pipe && !buffer) {
      if (!readable) {
        // Idle: wait for bytes without holding a pipe or a large buffer.
        boost::system::error_code ec;
        if (out.on_copy) {
          std::tie(ec, first_n) =
              co_await from.async_read_some(asio::buffer(first), use_tuple);
          first_pending = !ec || ec == asio::error::eof;  // 0 bytes and eof: the FIN
          if (first_pending) ec = {};
        } else {
          std::tie(ec) = co_await from.async_wait(stream_socket::wait_read, use_tuple);
        }
        if (link.stopped()) {
          out.end = direction_end::stopped;
          break;
        }
        if (ec) {
          end_with(direction_end::reset, ec.value(), true);
          break;
        }
        since_wait = 0;
      }
      if (!out.on_copy && !urgent) {
        pipe = res.pipes.get();
        // Pool at its cap (or no fds for a pipe): this direction carries on with copy.
        if (!pipe) {
          out.on_copy = true;
          out.fallback = splice_fallback::pool_exhausted;
        }
      }
      if (!pipe) buffer = res.buffers.get();
    }
    readable = true;

    // Under a rate limit a round moves at most what the bucket holds; when it is empty, wait for
    // tokens holding nothing (the stage is empty here).
    std::size_t allowed = std::numeric_limits<std::size_t>::max();
    if (limit) {
      const auto now = token_bucket::clock::now();
      allowed = static_cast<std::size_t>(
          std::min<std::uint64_t>(limit->allowance(now), std::numeric_limits<std::size_t>::max()));
      // (Bytes a wait has read already are moved, and paid for as a debt.)
      if (allowed == 0 && !first_pending) {
        pipe.reset();
        buffer.reset();
        limit_timer->expires_after(limit->wait_for(64 << 10, now));
        co_await limit_timer->async_wait(use_tuple);
        if (link.stopped()) {
          out.end = direction_end::stopped;
          break;
        }
        continue;
      }
    }

    // Fill the stage. It is always empty here: each round flushes it whole before the next, so
    // an EAGAIN below means the socket is drained, never that the pipe is full.
    std::size_t n = 0;
    bool drained = false;               // the source answered EAGAIN after these bytes
    boost::system::error_code deferred;  // the source failed after these bytes
    if (pipe) {
      const ssize_t r =
          sys::splice(src, nullptr, pipe->write_fd(), nullptr, std::min(pipe->capacity(), allowed),
                      splice_flags);
      if (r < 0) {
        const int e = errno;
        if (e == EINTR) continue;  // a signal interrupted us before anything moved
        pipe.reset();
        if (e == EAGAIN || e == EWOULDBLOCK) {
          // Drained, and the next bytes will raise a new edge. Unless splice stopped at an urgent
          // byte (EAGAIN though more is queued, and no edge to come): a copy round passes it.
          urgent = at_urgent_mark(src);
          readable = urgent;
          continue;
        }
        if (e == EINVAL || e == ENOSYS) {
          // This pair of fds cannot splice; nothing was consumed, so copy can take over
          // losslessly, if allowed and nothing has moved yet.
          if (engine == engine_mode::automatic && out.bytes() == 0) {
            out.on_copy = true;
            out.fallback = splice_fallback::refused;
            continue;
          }
          end_with(direction_end::splice_refused, e, true);
          break;
        }
        end_with(direction_end::reset, e, true);  // ECONNRESET, ETIMEDOUT...: the source is gone
        break;
      }
      if (r == 0 && at_urgent_mark(src)) {
        // Not EOF: splice at an urgent byte with the FIN queued behind it returns 0 too.
        pipe.reset();
        urgent = true;
        continue;
      }
      n = static_cast<std::size_t>(r);
      pipe->level = n;
    } else if (first_pending) {
      // What the wait read. A short read needs no read to EAGAIN: the next wait reads first
      // (Asio tries a read before it waits, unless the last one met EOF). A full first buffer
      // means more may be queued: read on into the large one, so that a bulk stream still moves
      // in large writes. An error there is reported once by the kernel, so it is kept until the
      // bytes already read are flushed.
      first_pending = false;
      n = first_n;
      std::memcpy(buffer->data.get(), first.data(), n);
      if (n < first.size()) {
        drained = true;
      } else if (allowed > n) {
        boost::system::error_code ec;
        n += from.read_some(
            asio::buffer(buffer->data.get() + n, std::min(buffer->size, allowed) - n), ec);
        if (ec == asio::error::would_block)
          drained = true;
        else if (ec && ec != asio::error::eof && ec != asio::error::interrupted)
          deferred = ec;
      }
      urgent = false;
    } else {
      // Asio's non-blocking read_some rather than async_read_some: the socket was just reported
      // readable, and an async operation would cost a pass through the scheduler (one more
      // epoll_wait) per round for nothing.
      boost::system::error_code ec;
      n = from.read_some(asio::buffer(buffer->data.get(), std::min(buffer->size, allowed)), ec);
      if (ec == asio::error::interrupted) continue;  // a signal, before anything moved
      if (ec == asio::error::would_block) {
        buffer.reset();  // drained: wait for the next edge, holding nothing
        readable = false;
        continue;
      }
      if (ec && ec != asio::error::eof) {
        end_with(direction_end::reset, ec.value(), true);
        break;
      }
      urgent = false;  // a plain read passes the urgent byte
    }
    if (n == 0) {
      // The source's peer reset, and the other direction's write took the error: not a FIN.
      if (link.peer_was_reset(src)) {
        end_with(direction_end::reset, ECONNRESET, true);
        break;
      }
      // FIN from the source; the stage is empty, so nothing is left behind it: forward it and let
      // the other direction run on (half-close). When that one has ended already, the close
      // that follows sends the FIN.
      if (!link.other_direction_ended()) ::shutdown(dst, SHUT_WR);
      out.end = direction_end::eof;
      break;
    }

    // The mirror takes its copy first: tee(2) needs the bytes still in the pipe.
    if (shadow) {
      if (pipe)
        shadow->feed_pipe(pipe->read_fd(), n);
      else
        shadow->feed(buffer->data.get(), n);
    }

    // Flush the stage whole. Short writes are normal; on a full send buffer, wait for room
    // (backpressure) and track exactly what is left.
    std::size_t left = n;
    while (left > 0) {
      boost::system::error_code ec;
      if (pipe) {
        const ssize_t m = sys::splice(pipe->read_fd(), nullptr, dst, nullptr, left, splice_flags);
        if (m > 0)
          left -= static_cast<std::size_t>(m);
        else  // EINTR and EAGAIN are handled below; EPIPE/ECONNRESET: the destination is gone
          ec.assign(m < 0 ? errno : EPIPE, asio::error::get_system_category());
        pipe->level = left;
      } else {
        left -= to.write_some(asio::buffer(buffer->data.get() + (n - left), left), ec);
      }
      if (!ec || ec == asio::error::interrupted) continue;
      if (ec == asio::error::would_block) {
        // The copy engine waits by writing: unlike async_wait, no epoll_ctl per wait.
        boost::system::error_code wait_ec;
        if (pipe) {
          std::tie(wait_ec) = co_await to.async_wait(stream_socket::wait_write, use_tuple);
        } else {
          std::size_t m;
          std::tie(wait_ec, m) = co_await to.async_write_some(
              asio::buffer(buffer->data.get() + (n - left), left), use_tuple);
          left -= m;
        }
        if (link.stopped()) {
          out.end = direction_end::stopped;
          break;
        }
        if (!wait_ec) continue;
        ec = wait_ec;
      }
      // A pipe that still holds bytes is closed by its lease, not pooled.
      end_with(direction_end::reset, ec.value(), false);
      break;
    }
    (pipe ? out.spliced : out.copied) += n - left;
    if (meter.slot) {
      add_single_writer(meter.up ? meter.slot->up : meter.slot->down, n - left);
      add_single_writer(pipe ? meter.slot->spliced : meter.slot->copied, n - left);
    }
    link.touch();
    if (limit) limit->consume(n - left);
    if (left > 0) break;  // failed or stopped mid-flush; out.end says which
    if (deferred) {
      end_with(direction_end::reset, deferred.value(), true);
      break;
    }
    if (drained) {
      buffer.reset();
      readable = false;
    }
    // A copy round that passed an urgent byte is done: go back to splice (without waiting).
    if (!out.on_copy && buffer) buffer.reset();

    since_wait += n;
    if (since_wait >= yield_after_bytes) {
      since_wait = 0;
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
      if (link.stopped()) {
        out.end = direction_end::stopped;
        break;
      }
    }
  }
  if (limit_timer) link.remove_timer(&*limit_timer);  // it dies with this frame
  link.direction_ended();
  co_return out;
}

}  // namespace zcproxy
