#include "zcproxy/relay.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <limits>
#include <optional>
#include <tuple>

#include "drained_read.hpp"
#include "zcproxy/stage.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy {
namespace asio = boost::asio;

namespace {

// After this many bytes without waiting, yield so one fast connection cannot starve the others
// on its thread.
constexpr std::uint64_t yield_after_bytes = 4u << 20;
// The copy engine waits for bytes by reading up to this many into the direction's own small
// buffer: Asio's async_wait re-arms the socket with epoll_ctl on every wait, a read does not. What
// it read is then copied into a pooled buffer (take_stage, fill_first: a lease from the worker's
// pool and a copy of at most this many bytes, no system call) and flushed from there, like any
// round. The read is a drained read (drained_read.hpp): when it leaves nothing behind, the next
// wait costs no system call. Kept small: it is pinned for the connection's life.
constexpr std::size_t first_read_size = 1024;
constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

// What a round does once its fill has answered.
enum class next { flush, new_round, end };

// One direction's state from round to round, and the steps of a round that do not wait. relay()
// below is the policy over them, and does every wait itself.
struct direction {
  direction(stream_socket& from, stream_socket& to, relay_resources& res, engine_mode engine,
            relay_link& link, const relay_options& opt)
      : from(from),
        to(to),
        res(res),
        engine(engine),
        link(link),
        opt(opt),
        src(from.native_handle()),
        dst(to.native_handle()) {
    out.on_copy = engine == engine_mode::copy;
  }

  bool holding() const { return pipe || buffer; }
  // Whether the link is stopped (the direction then ends so).
  bool stopped() {
    if (link.stopped()) out.end = direction_end::stopped;
    return link.stopped();
  }
  void take_stage();
  std::size_t allowance(token_bucket::clock::time_point now) const;
  next fill(std::size_t allowed);
  next fill_pipe(std::size_t allowed);
  next fill_first(std::size_t allowed);
  next fill_buffer(std::size_t allowed);
  next at_end_of_source();
  void feed_mirror();
  stage_result flush();
  std::size_t left() { return pipe ? pipe->level : copy_stage.level(); }
  void count(std::size_t moved);
  bool end_round();
  void end_with(direction_end end, int e, bool source_failed);

  stream_socket& from;
  stream_socket& to;
  relay_resources& res;
  const engine_mode engine;
  relay_link& link;
  const relay_options& opt;
  const int src, dst;
  direction_result out;
  pipe_pool::lease pipe;      // held only while bytes are in flight
  buffer_pool::lease buffer;  // likewise, for copy rounds
  buffer_stage copy_stage;    // over `buffer`, while held
  // Whether the source may hold bytes not tried since its last EAGAIN. Readiness comes as edges
  // (epoll EPOLLET): wait only after an EAGAIN, or an edge that came before the wait is lost.
  bool readable = false;
  bool urgent = false;  // the source sits at a TCP urgent byte, which splice never passes
  std::uint64_t since_wait = 0;
  std::array<char, first_read_size> first;  // copy engine: what the wait read (first_n bytes)
  std::size_t first_n = 0;
  bool first_pending = false;
  // This round's fill.
  std::size_t n = 0;
  bool drained = false;  // the source answered EAGAIN after these bytes
  int deferred = 0;      // the source failed after these bytes (an errno)
};

void direction::take_stage() {
  if (!out.on_copy && !urgent) {
    pipe = res.pipes.get();
    // Pool at its cap (or no fds for a pipe): this direction carries on with copy.
    if (!pipe) {
      out.on_copy = true;
      out.fallback = splice_fallback::pool_exhausted;
    }
  }
  if (!pipe) {
    buffer = res.buffers.get();
    copy_stage = buffer_stage(*buffer);
  }
}

std::size_t direction::allowance(token_bucket::clock::time_point now) const {
  return static_cast<std::size_t>(std::min<std::uint64_t>(opt.limit->allowance(now), unlimited));
}

// Fill the stage. It is always empty here: each round flushes it whole before the next, so an
// EAGAIN means the socket is drained, never that the pipe is full.
next direction::fill(std::size_t allowed) {
  n = 0;
  drained = false;
  deferred = 0;
  const next step = pipe            ? fill_pipe(allowed)
                    : first_pending ? fill_first(allowed)
                                    : fill_buffer(allowed);
  if (step == next::flush && n == 0) return at_end_of_source();
  return step;
}

next direction::fill_pipe(std::size_t allowed) {
  const stage_result r = pipe_stage(*pipe).fill(src, allowed);
  n = r.moved;
  switch (r.status) {
    case stage_status::done:
    case stage_status::eof:  // n is 0
      return next::flush;
    case stage_status::would_block:
      pipe.reset();  // drained: wait for the next edge, holding nothing
      readable = false;
      return next::new_round;
    case stage_status::urgent:
      pipe.reset();  // a copy round passes the urgent byte, at once (no edge is coming)
      urgent = true;
      return next::new_round;
    case stage_status::error:
      break;
  }
  pipe.reset();
  if (r.error == EINVAL || r.error == ENOSYS) {
    // This pair of fds cannot splice; nothing was consumed, so copy can take over losslessly,
    // if allowed and nothing has moved yet.
    if (engine == engine_mode::automatic && out.bytes() == 0) {
      out.on_copy = true;
      out.fallback = splice_fallback::refused;
      return next::new_round;
    }
    end_with(direction_end::splice_refused, r.error, true);
    return next::end;
  }
  end_with(direction_end::reset, r.error, true);  // ECONNRESET, ETIMEDOUT...: the source is gone
  return next::end;
}

// What the wait read. A short read needs no read to EAGAIN: the next wait reads first (Asio tries
// a read before it waits, unless the last one met EOF). A full first buffer means more may be
// queued: read on into the large one, so that a bulk stream still moves in large writes. An error
// there is reported once by the kernel, so it is kept until the bytes already read are flushed;
// an EOF there is met again by the next wait.
next direction::fill_first(std::size_t allowed) {
  first_pending = false;
  copy_stage.put(first.data(), first_n);
  n = first_n;
  if (n < first.size()) {
    drained = true;
  } else if (allowed > n) {
    const stage_result r = copy_stage.fill(from, std::min(buffer->size, allowed) - n);
    n += r.moved;
    if (r.status == stage_status::would_block)
      drained = true;
    else if (r.status == stage_status::error)
      deferred = r.error;
  }
  urgent = false;
  return next::flush;
}

next direction::fill_buffer(std::size_t allowed) {
  const stage_result r = copy_stage.fill(from, allowed);
  n = r.moved;
  switch (r.status) {
    case stage_status::done:
    case stage_status::eof:  // n is 0
      urgent = false;        // a plain read passes the urgent byte
      return next::flush;
    case stage_status::would_block:
      buffer.reset();  // drained: wait for the next edge, holding nothing
      readable = false;
      return next::new_round;
    case stage_status::urgent:  // a read never stops at one
    case stage_status::error:
      break;
  }
  end_with(direction_end::reset, r.error, true);
  return next::end;
}

next direction::at_end_of_source() {
  // The source's peer reset, and the other direction's write took the error: not a FIN.
  if (link.peer_was_reset(src)) {
    end_with(direction_end::reset, ECONNRESET, true);
    return next::end;
  }
  // FIN from the source; the stage is empty, so nothing is left behind it: forward it and let
  // the other direction run on (half-close). When that one has ended already, the close that
  // follows sends the FIN.
  if (!link.other_direction_ended()) ::shutdown(dst, SHUT_WR);
  out.end = direction_end::eof;
  return next::end;
}

// The mirror takes its copy first: tee(2) needs the bytes still in the pipe.
void direction::feed_mirror() {
  if (!opt.shadow) return;
  if (pipe)
    opt.shadow->feed_pipe(pipe->read_fd(), n);
  else
    opt.shadow->feed(copy_stage.data(), n);
}

stage_result direction::flush() {
  return pipe ? pipe_stage(*pipe).flush(dst) : copy_stage.flush(to);
}

void direction::count(std::size_t moved) {
  (pipe ? out.spliced : out.copied) += moved;
  if (opt.meter.slot) {
    add_single_writer(opt.meter.up ? opt.meter.slot->up : opt.meter.slot->down, moved);
    add_single_writer(pipe ? opt.meter.slot->spliced : opt.meter.slot->copied, moved);
  }
  if (opt.meter.endpoint)
    add_single_writer(opt.meter.up ? opt.meter.endpoint->up : opt.meter.endpoint->down, moved);
  link.touch();
  if (opt.limit) opt.limit->consume(moved);
}

// After a whole flush: false when the direction ends here.
bool direction::end_round() {
  if (deferred) {
    end_with(direction_end::reset, deferred, true);
    return false;
  }
  if (drained) {
    buffer.reset();
    readable = false;
  }
  // A copy round that passed an urgent byte is done: go back to splice (without waiting).
  if (!out.on_copy && buffer) buffer.reset();
  since_wait += n;
  return true;
}

// A failing source breaks the connection both ways: stop the other direction too, and pass the
// reset on to the destination's peer (closing with linger 0 sends RST, not a FIN that would make
// a cut-off stream look complete). A failing destination ends only this direction: the other one
// reads from that same socket and still delivers what it holds (an early reply, say) before it
// meets the error itself.
void direction::end_with(direction_end end, int e, bool source_failed) {
  out.end = end;
  if (!source_failed) {
    if (e == ECONNRESET || e == EPIPE) link.peer_reset(dst);
    return;
  }
  const linger abort_on_close{1, 0};
  ::setsockopt(dst, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
  link.stop();
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

asio::awaitable<direction_result> relay(stream_socket& from, stream_socket& to,
                                        relay_resources& res, engine_mode engine, relay_link& link,
                                        relay_options options) {
  direction d(from, to, res, engine, link, options);
  std::optional<asio::steady_timer> limit_timer;  // waits for the rate limit's tokens
  if (options.limit) {
    limit_timer.emplace(from.get_executor());
    link.add_timer(&*limit_timer);
  }
  // Checked before every round, not only after waits: stop() cancels only what waits at that
  // moment, and a wait that had completed (a write that moved everything) resumes after it.
  while (!d.stopped()) {
    if (!d.holding()) {
      if (!d.readable) {
        // Idle: wait for bytes without holding a pipe or a large buffer.
        boost::system::error_code ec;
        if (d.out.on_copy) {
          std::tie(ec, d.first_n) =
              co_await detail::async_read_drained(from, asio::buffer(d.first), use_tuple);
          d.first_pending = !ec || ec == asio::error::eof;  // 0 bytes and eof: the FIN
          if (d.first_pending) ec = {};
        } else {
          std::tie(ec) = co_await from.async_wait(stream_socket::wait_read, use_tuple);
        }
        if (d.stopped()) break;
        if (ec) {
          d.end_with(direction_end::reset, ec.value(), true);
          break;
        }
        d.since_wait = 0;
      }
      d.take_stage();
    }
    d.readable = true;

    // Under a rate limit a round moves at most what the bucket holds; when it is empty, wait for
    // tokens holding nothing (the stage is empty here). Bytes a wait has read already are moved,
    // and paid for as a debt.
    std::size_t allowed = unlimited;
    if (options.limit) {
      const auto now = token_bucket::clock::now();
      allowed = d.allowance(now);
      if (allowed == 0 && !d.first_pending) {
        d.pipe.reset();
        d.buffer.reset();
        limit_timer->expires_after(options.limit->wait_for(64 << 10, now));
        co_await limit_timer->async_wait(use_tuple);
        continue;
      }
    }

    const next step = d.fill(allowed);
    if (step == next::end) break;
    if (step == next::new_round) continue;
    d.feed_mirror();

    // Flush the stage whole. Short writes are normal; on a full send buffer, wait for room
    // (backpressure): the stage keeps exactly what is left.
    for (;;) {
      stage_result r = d.flush();
      if (r.status == stage_status::done) break;
      if (r.status == stage_status::would_block) {
        // The copy engine waits by writing: unlike async_wait, no epoll_ctl per wait.
        boost::system::error_code ec;
        if (d.pipe) {
          std::tie(ec) = co_await to.async_wait(stream_socket::wait_write, use_tuple);
        } else {
          std::size_t m;
          std::tie(ec, m) = co_await to.async_write_some(
              asio::buffer(d.copy_stage.data(), d.copy_stage.level()), use_tuple);
          d.copy_stage.consume(m);
        }
        if (d.stopped()) break;
        if (!ec) continue;
        r.error = ec.value();
      }
      // A pipe that still holds bytes is closed by its lease, not pooled.
      d.end_with(direction_end::reset, r.error, false);
      break;
    }
    d.count(d.n - d.left());
    if (d.left() > 0) break;  // failed or stopped mid-flush; out.end says which
    if (!d.end_round()) break;

    if (d.since_wait >= yield_after_bytes) {
      d.since_wait = 0;
      co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
    }
  }
  if (limit_timer) link.remove_timer(&*limit_timer);  // it dies with this frame
  link.direction_ended();
  co_return d.out;
}

}  // namespace zcproxy
