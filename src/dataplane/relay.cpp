#include "zcproxy/relay.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <limits>

#include "zcproxy/sys.hpp"

#if ZCPROXY_ASIO_INTERNALS
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>
#endif

namespace zcproxy {
namespace asio = boost::asio;

namespace {

// After this many bytes without waiting, yield so one fast connection cannot starve the others
// on its thread.
constexpr std::uint64_t yield_after_bytes = 4u << 20;
constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

// Under a rate limit, an empty bucket is waited on until it holds this much (or its whole burst,
// when smaller): a round's worth, so the timer wakes a direction once per 64 KiB and not for a
// few bytes at a time; the default burst's floor (token_bucket::default_burst) is the same.
constexpr std::uint64_t rate_limit_wake_bytes = 64 << 10;

// Whether the kernel's count of bytes left behind (TCP_INQ) shows the source drained: none left,
// and no error or hangup reported, whose edge would not come again. Without Asio's internals
// the hangup cannot be seen, and a fill reads on to EAGAIN.
// Data followed by a FIN is safe: the kernel reports 1, not 0, once a FIN is queued behind what
// was read (tcp_inq_hint, net/ipv4/tcp.c: "After receiving a FIN, tell the user-space to continue
// reading by returning a non-zero inq"), so 0 means nothing is left, not even a FIN, whose edge
// has been taken already. A FIN that comes later raises an edge of its own.
bool drained_by([[maybe_unused]] const stage_result& r, [[maybe_unused]] stream_socket& from) {
#if ZCPROXY_ASIO_INTERNALS
  return r.left == 0 && !(detail::reported_events::of(from) & (EPOLLERR | EPOLLHUP));
#else
  return false;
#endif
}

// Whether bytes may wait in `s` that no reactor pass has reported yet as an edge still to come:
// epoll reported it readable (or an error, or a hangup) when it last reported it. A socket epoll
// has never reported (a fresh upstream) holds nothing, or its edge is pending in epoll.
bool maybe_readable([[maybe_unused]] stream_socket& s) {
#if ZCPROXY_ASIO_INTERNALS
  return detail::reported_events::of(s) & (EPOLLIN | EPOLLPRI | EPOLLERR | EPOLLHUP | EPOLLRDHUP);
#else
  return true;
#endif
}

// Whether the source may hold TCP urgent data: epoll reports EPOLLPRI while an urgent byte waits
// (it is in the events of every report from the one its segment raised on). Without Asio's
// internals, always.
bool urgent_possible([[maybe_unused]] stream_socket& s) {
#if ZCPROXY_ASIO_INTERNALS
  return detail::reported_events::of(s) & EPOLLPRI;
#else
  return true;
#endif
}

}  // namespace

void relay_link::stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  client_.cancel(ignored);
  upstream_.cancel(ignored);
  for (auto* t : timers_)
    if (t) t->cancel();
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

relay_direction::~relay_direction() = default;

void relay_direction::start(relay_resources& res, engine_mode engine, const relay_options& options,
                            relay_owner& owner) {
  res_ = &res;
  engine_ = engine;
  opt_ = options;
  owner_ = &owner;
  out_.on_copy = engine == engine_mode::copy;
  if (opt_.limit) {
    limit_timer_ = std::make_unique<asio::steady_timer>(from_.get_executor());
    link_.add_timer(limit_timer_.get());
  }
  readable_ = maybe_readable(from_);
  // When not, no edge has been taken from it: bytes that came have an edge still to come, and the
  // reactor's first try would find nothing.
  if (!readable_ && !link_.stopped()) return wait(waiting::readable, true);
  run();
}

// Rounds until the direction must wait or has ended. A round: fill the stage (it is empty here),
// mirror, flush it whole, count.
void relay_direction::run() {
  // Whether this call has filled: a source it found empty was found so just now, and no reactor
  // pass (which could have taken an edge) has run since.
  bool filled_here = false;
  // Checked before every round, not only after waits: stop() cancels only what waits at that
  // moment, and a wait that had completed (a write that moved everything) resumes after it.
  while (!stopped()) {
    // Under a rate limit a round moves at most what the bucket holds; when it is empty, wait for
    // tokens holding nothing.
    if (opt_.limit && allowance() == 0) {
      stage_.release();
      limit_timer_->expires_after(
          opt_.limit->wait_for(rate_limit_wake_bytes, token_bucket::clock::now()));
      limit_timer_->async_wait([this](boost::system::error_code) { run(); });
      return;
    }
    if (!readable_) {
      // Idle: wait for bytes without holding a pipe or a buffer. A source found empty earlier (by
      // the reactor's perform, before a yield, a rate limit's wait or a wait for room) may have
      // raised an edge since that no wait took: then the reactor decides, from the edges it has
      // seen, whether to try first.
      wait(waiting::readable, filled_here);
      return;
    }
    try_fill();
    filled_here = true;
    if (!after_fill()) return;
  }
  end();
}

// Queue the wait (or, without Asio's internals, Asio's async_wait). `just_blocked`: the source
// or destination has just answered EAGAIN, so the reactor's first try, made before it queues the
// wait, would only repeat it.
void relay_direction::wait(waiting what, bool just_blocked) {
  waiting_ = what;
  performed_ = false;
  if (what == waiting::readable) since_wait_ = 0;
#if ZCPROXY_ASIO_INTERNALS
  auto& impl = detail::asio_impl(what == waiting::readable ? from_ : to_);
  if (!res_->reactor)
    res_->reactor = &asio::use_service<asio::detail::reactor>(
        asio::query(from_.get_executor(), asio::execution::context));
  op_.ec_ = {};
  op_.bytes_transferred_ = 0;
  skip_ = just_blocked;
  starting_ = true;
  res_->reactor->start_op(
      what == waiting::readable ? asio::detail::reactor::read_op : asio::detail::reactor::write_op,
      impl.socket_, impl.reactor_data_, &op_, true, true);
  starting_ = false;
#else
  (void)just_blocked;
  (what == waiting::readable ? from_ : to_)
      .async_wait(what == waiting::readable ? stream_socket::wait_read : stream_socket::wait_write,
                  [this](boost::system::error_code ec) { on_ready(ec); });
#endif
}

#if ZCPROXY_ASIO_INTERNALS
// Run by the reactor when epoll reports the socket (or by start_op, before it queues the wait,
// unless the socket was found drained since its last edge): the fill or the flush the wait is
// for. Under the descriptor's lock: nothing here may touch the reactor (no cancel, no stop).
asio::detail::reactor_op::status relay_direction::wait_op::perform(reactor_op* base) {
  auto* op = static_cast<wait_op*>(base);
  relay_direction& d = *op->d;
  if (d.starting_ && d.skip_) return not_done;
  if (d.waiting_ == waiting::writable) {
    if (!d.try_flush()) return not_done;
    d.performed_ = true;
    return done;
  }
  if (!d.try_fill()) return not_done;
  d.performed_ = true;
  // Drained: told to the reactor, which then makes no first try before the socket's next edge
  // (and any edge, until the next wait, makes it try again).
  return d.drained_ ? done_and_exhausted : done;
}

void relay_direction::wait_op::complete(void* owner, asio::detail::scheduler_operation* base,
                                        const boost::system::error_code&, std::size_t) {
  // No owner: the io_context is being destroyed with the wait queued. The op is the direction's,
  // not the reactor's, so there is nothing to free.
  if (!owner) return;
  auto* op = static_cast<wait_op*>(base);
  op->d->on_ready(op->ec_);
}
#endif

// The wait has ended: the fill or flush it was for has been made (by the reactor's perform), or
// the wait was cancelled, or (without Asio's internals) the socket is ready.
void relay_direction::on_ready(const boost::system::error_code& ec) {
  const waiting what = std::exchange(waiting_, waiting::nothing);
  if (stopped()) {
    count(n_ - left());
    return end();
  }
  if (ec) {
    if (what == waiting::readable) end_with(direction_end::reset, ec, true);
    if (what == waiting::writable) {
      end_with(direction_end::reset, ec, false);
      count(n_ - left());
    }
    return end();
  }
  if (what == waiting::readable) {
    if (!performed_ && !try_fill()) return wait(waiting::readable, true);
    if (after_fill()) run();
  } else {
    if (!performed_ && !try_flush()) return wait(waiting::writable, true);
    if (finish_round()) run();
  }
}

bool relay_direction::stopped() {
  if (link_.stopped()) out_.end = direction_end::stopped;
  return link_.stopped();
}

std::size_t relay_direction::allowance() const {
  return static_cast<std::size_t>(
      std::min<std::uint64_t>(opt_.limit->allowance(token_bucket::clock::now()), unlimited));
}

// Fill the stage, taking one if none is held. It is always empty here: each round flushes it
// whole before the next, so an EAGAIN means the socket is drained, never that the pipe is full.
// False when the source would block (the stage is given back). Policy is left to after_fill():
// this runs under the reactor's lock too.
bool relay_direction::try_fill() {
  readable_ = true;
  if (!stage_.held()) take_stage();
  n_ = 0;
  drained_ = false;
  error_ = 0;
  const std::size_t allowed = opt_.limit ? allowance() : unlimited;
  step_ = fill(allowed);
  return step_ != next::new_round || readable_;
}

void relay_direction::take_stage() {
  if (!out_.on_copy && !urgent_) {
    if (auto pipe = res_->pipes.get()) return stage_.hold(std::move(pipe));
    // Pool at its cap (or no fds for a pipe): this direction carries on with copy.
    out_.on_copy = true;
    out_.copy_switch = splice_fallback::pool_exhausted;
  }
  stage_.hold(res_->buffers.get());
}

relay_direction::next relay_direction::fill(std::size_t allowed) {
  const stage_result r = stage_.fill(from_.native_handle(), allowed, urgent_possible(from_));
  n_ = r.moved;
  switch (r.status) {
    case stage_status::done:
      drained_ = drained_by(r, from_);
      [[fallthrough]];
    case stage_status::eof:                    // n is 0
      if (!stage_.spliced()) urgent_ = false;  // a plain read passes the urgent byte
      return next::flush;
    case stage_status::would_block:
      stage_.release();  // drained: wait for the next edge, holding nothing
      readable_ = false;
      return next::new_round;
    case stage_status::urgent:
      stage_.release();  // a copy round passes the urgent byte, at once (no edge is coming)
      urgent_ = true;
      return next::new_round;
    case stage_status::error:
      break;
  }
  const bool spliced = stage_.spliced();
  stage_.release();
  error_ = r.error.value();
  end_kind_ = direction_end::reset;  // ECONNRESET, ETIMEDOUT...: the source is gone
  if (spliced && (r.error == boost::system::errc::invalid_argument ||
                  r.error == boost::system::errc::function_not_supported)) {
    // This pair of fds cannot splice; nothing was consumed, so copy can take over losslessly,
    // if allowed and nothing has moved yet.
    if (engine_ == engine_mode::automatic && out_.bytes() == 0) {
      out_.on_copy = true;
      out_.copy_switch = splice_fallback::refused;
      return next::new_round;
    }
    end_kind_ = direction_end::splice_refused;
  }
  return next::end;
}

// After a fill: the policy. False when the direction waits or has ended.
bool relay_direction::after_fill() {
  if (step_ == next::new_round) return true;
  if (step_ == next::end) {
    end_with(end_kind_, sys::errno_error(error_), true);
    end();
    return false;
  }
  if (n_ == 0) {
    at_end_of_source();
    end();
    return false;
  }
  feed_mirror();
  // Flush the stage whole. Short writes are normal; on a full send buffer, wait for room
  // (backpressure): the stage keeps exactly what is left.
  if (!try_flush()) {
    // Edges reported while it waits for room are not seen here: what the fill found about the
    // source is stale by then.
    drained_ = false;
    wait(waiting::writable, true);
    return false;
  }
  return finish_round();
}

void relay_direction::at_end_of_source() {
  // The source's peer reset, and the other direction's write took the error: not a FIN.
  if (link_.peer_was_reset(from_.native_handle())) {
    end_with(direction_end::reset, boost::asio::error::connection_reset, true);
    return;
  }
  // FIN from the source; the stage is empty, so nothing is left behind it: forward it and let
  // the other direction run on (half-close). When that one has ended already, the close that
  // follows sends the FIN.
  if (!link_.other_direction_ended()) ::shutdown(to_.native_handle(), SHUT_WR);
  out_.end = direction_end::eof;
}

// The mirror takes its copy first: tee(2) needs the bytes still in the pipe.
void relay_direction::feed_mirror() {
  if (opt_.shadow) stage_.feed(*opt_.shadow, n_);
}

// Flush what the stage holds; false when the destination is full with bytes left.
bool relay_direction::try_flush() {
  const stage_result r = stage_.flush(to_.native_handle());
  flush_error_ = r.status == stage_status::error ? r.error.value() : 0;
  return r.status != stage_status::would_block;
}

std::size_t relay_direction::left() const {
  return stage_.level();
}

// After the round's flush has ended (done or failed): count, and end the round. False when the
// direction yields or has ended.
bool relay_direction::finish_round() {
  // A failing destination: a pipe that still holds bytes is closed by its lease, not pooled.
  if (flush_error_) end_with(direction_end::reset, sys::errno_error(flush_error_), false);
  count(n_ - left());
  if (left() > 0) {
    end();
    return false;
  }
  if (drained_) {
    stage_.release();
    readable_ = false;
  }
  // A copy round that passed an urgent byte is done: go back to splice (without waiting).
  if (!out_.on_copy && stage_.held() && !stage_.spliced()) stage_.release();
  since_wait_ += static_cast<std::uint32_t>(n_);
  n_ = 0;
  if (since_wait_ >= yield_after_bytes) {
    since_wait_ = 0;
    asio::post(from_.get_executor(), [this] { run(); });
    return false;
  }
  return true;
}

void relay_direction::count(std::size_t moved) {
  if (moved == 0) return;
  (stage_.spliced() ? out_.spliced : out_.copied) += moved;
  if (opt_.meter.slot) {
    add_single_writer(opt_.meter.up ? opt_.meter.slot->up : opt_.meter.slot->down, moved);
    add_single_writer(stage_.spliced() ? opt_.meter.slot->spliced : opt_.meter.slot->copied, moved);
  }
  if (opt_.meter.endpoint)
    add_single_writer(opt_.meter.up ? opt_.meter.endpoint->up : opt_.meter.endpoint->down, moved);
  link_.touch();
  if (opt_.limit) opt_.limit->consume(moved);
}

// A failing source breaks the connection both ways: stop the other direction too, and pass the
// reset on to the destination's peer (closing with linger 0 sends RST, not a FIN that would make
// a cut-off stream look complete). A failing destination ends only this direction: the other one
// reads from that same socket and still delivers what it holds (an early reply, say) before it
// meets the error itself.
void relay_direction::end_with(direction_end end, const boost::system::error_code& e,
                               bool source_failed) {
  out_.end = end;
  if (!source_failed) {
    if (e == boost::asio::error::connection_reset || e == boost::asio::error::broken_pipe)
      link_.peer_reset(to_.native_handle());
    return;
  }
  const linger abort_on_close{1, 0};
  ::setsockopt(to_.native_handle(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
  link_.stop();
}

// Gives back what the direction holds (a pipe with bytes in it is closed, not pooled) and tells
// the owner, which may destroy the direction: nothing touches it after.
void relay_direction::end() {
  stage_.release();
  link_.direction_ended();
  owner_->direction_ended(*this);
}

}  // namespace zcproxy
