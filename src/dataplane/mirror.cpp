#include "zcproxy/mirror.hpp"

#include <fcntl.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <random>

#include "zcproxy/deadline.hpp"
#include "zcproxy/endpoint_connection.hpp"
#include "zcproxy/log.hpp"
#include "zcproxy/sys.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

bool mirror_sampled(double share) {
  if (share >= 1) return true;
  if (share <= 0) return false;
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::uniform_real_distribution<double>(0, 1)(rng) < share;
}

mirror::mirror(const stream_socket::executor_type& ex, std::size_t lag, std::size_t pipe_size)
    : socket_(ex),
      wake_(ex, asio::steady_timer::time_point::max()),
      lag_(std::max(lag, pipe_size)),  // less than one round would stop every mirror at once
      pipe_size_(pipe_size) {}

void mirror::stop(mirror_result why) {
  if (result_) return;
  result_ = why;
  boost::system::error_code ec;
  socket_.close(ec);  // the shadow sees its stream end early: a prefix; the pump wakes
  staged_.clear();
  spare_.reset();
  wake_.cancel();
}

void mirror::end_of_stream(std::chrono::milliseconds limit) {
  input_done_ = true;
  wake_.expires_after(limit);  // wakes the pump, which now waits at most this long
}

bool mirror::room_for(std::size_t n) {
  // Bytes, and pipes: tee and splice keep one slot per buffer of the source, so small segments
  // fill a pipe's slots long before its bytes; the chain is no longer than max_lag's worth.
  if (staged() + n > lag_ || staged_.size() > lag_ / pipe_size_ + 1) {
    stop(mirror_result::slow);
    return false;
  }
  if (!spare_) spare_ = pipe::open(pipe_size_);
  if (!spare_) stop(mirror_result::slow);  // no fds for a pipe: nothing more can be staged
  return spare_.has_value();
}

void mirror::feed_pipe(int pipe_read_fd, std::size_t n) {
  if (!active()) return;
  push();  // room first
  if (!active() || !room_for(n)) return;
  // tee(2) duplicates the pipe's pages without consuming them, always from the start of the
  // source pipe, so all n bytes must fit at once: into the empty spare (as large as the relay's
  // pipe). SPLICE_F_NONBLOCK: nothing here may wait.
  const ssize_t t = sys::tee(pipe_read_fd, spare_->write_fd(), n, SPLICE_F_NONBLOCK);
  if (t != static_cast<ssize_t>(n)) return stop(mirror_result::slow);
  spare_->level = n;
  fed_ += n;
  // Onto the chain: into the last pipe as far as it takes the pages (splice moves them), the
  // rest stays in the spare, which becomes the last.
  if (!staged_.empty()) {
    pipe& last = staged_.back();
    const ssize_t m = sys::splice(spare_->read_fd(), nullptr, last.write_fd(), nullptr, n,
                                  SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (m > 0) {
      last.level += static_cast<std::size_t>(m);
      spare_->level -= static_cast<std::size_t>(m);
    }
  }
  if (spare_->level > 0) {
    staged_.push_back(std::move(*spare_));
    spare_.reset();
  }
  push();
  wake_.cancel();
}

void mirror::feed(const char* data, std::size_t n) {
  if (!active() || n == 0) return;
  push();
  if (!active() || !room_for(n)) return;
  bool next_pipe = staged_.empty();  // the last pipe is full (a write met EAGAIN), or none
  while (n > 0) {
    if (next_pipe) {
      if (!room_for(0)) return;
      staged_.push_back(std::move(*spare_));
      spare_.reset();
      next_pipe = false;
    }
    pipe& last = staged_.back();
    const ssize_t w = ::write(last.write_fd(), data, n);  // the pipe is O_NONBLOCK
    if (w > 0) {
      last.level += static_cast<std::size_t>(w);
      fed_ += static_cast<std::size_t>(w);
      data += w;
      n -= static_cast<std::size_t>(w);
    } else if (w < 0 && errno == EAGAIN) {
      next_pipe = true;
    } else if (!(w < 0 && errno == EINTR)) {
      return stop(mirror_result::slow);
    }
  }
  push();
  wake_.cancel();
}

void mirror::push() {
  if (connecting_ || !active()) return;
  const int fd = socket_.native_handle();
  // Replies are dropped (MSG_TRUNC: TCP discards them without copying). EOF: the shadow closed.
  // The sink's size only bounds what one call drops; nothing is copied into it.
  static thread_local std::array<char, 16384> sink;
  for (;;) {
    const ssize_t r = ::recv(fd, sink.data(), sink.size(), MSG_DONTWAIT | MSG_TRUNC);
    if (r > 0) continue;
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    return stop(mirror_result::shadow_closed);  // 0: FIN; else ECONNRESET and the like
  }
  while (!staged_.empty()) {
    pipe& front = staged_.front();
    if (front.level == 0) {
      if (staged_.size() == 1) return;  // the last one stays to be added to
      staged_.pop_front();
      continue;
    }
    const ssize_t m = sys::splice(front.read_fd(), nullptr, fd, nullptr, front.level,
                                  SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (m > 0) {
      front.level -= static_cast<std::size_t>(m);
      sent_ += static_cast<std::size_t>(m);
      if (meter_) add_single_writer(meter_->up, static_cast<std::size_t>(m));
      continue;
    }
    if (m < 0 && errno == EINTR) continue;
    if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // full: the rest waits
    return stop(mirror_result::shadow_closed);  // EPIPE, ECONNRESET: the shadow is gone
  }
}

asio::awaitable<void> run_mirror(std::shared_ptr<mirror> m, std::shared_ptr<upstream> shadow,
                                 std::shared_ptr<listener_metrics> metrics,
                                 std::chrono::milliseconds connect_timeout, unsigned worker,
                                 std::optional<address> client) {
  // One attempt, with a timer of its own: a stop meanwhile closes the socket, which ends the
  // connect at once. Its failure counts towards passive ejection, which is not logged for a
  // shadow (it never was).
  endpoint_connection shadow_end(*shadow, worker);
  co_await shadow_end.connect(m->socket_,
                              {.timeout = connect_timeout,
                               .attempts = 1,
                               .log_ejection = false,
                               .client = client ? &*client : nullptr},
                              [&m] { return !m->active(); });
  if (shadow_end.index()) m->meter_ = &shadow_end.meter();
  m->connecting_ = false;
  if (!shadow_end.index()) m->stop(mirror_result::connect_failed);
  // Pump: send what is staged whenever the shadow has room; sleep while nothing is.
  while (m->active()) {
    m->push();
    if (!m->active()) break;
    const bool staged = m->staged() > 0;
    if (!staged && m->input_done_) break;
    // Replies wake it too: push() drops them, so a chatty shadow never fills our receive
    // buffer and stops reading what we send.
    // By hand, not within(): with bytes staged, two socket waits race the wake-up timer.
    boost::system::error_code deadline_ec = asio::error::operation_aborted;
    if (staged) {
      auto r = co_await (m->socket_.async_wait(stream_socket::wait_write, use_tuple) ||
                         m->socket_.async_wait(stream_socket::wait_read, use_tuple) ||
                         m->wake_.async_wait(use_tuple));
      if (r.index() == 2) deadline_ec = std::get<0>(std::get<2>(r));
    } else {
      auto r = co_await (m->socket_.async_wait(stream_socket::wait_read, use_tuple) ||
                         m->wake_.async_wait(use_tuple));
      if (r.index() == 1) deadline_ec = std::get<0>(std::get<1>(r));
    }
    // The deadline, not a feed (feeds only cancel): the shadow took too long for the rest.
    if (!deadline_ec && m->input_done_) m->stop(mirror_result::slow);
  }
  if (m->active()) {
    // The whole stream went: end it, and drop replies until the shadow closes (or the deadline).
    boost::system::error_code ec;
    m->socket_.shutdown(stream_socket::shutdown_send, ec);
    std::array<char, 16384> sink;  // replies, read to be dropped: any size does, this one is small
    // A stop meanwhile (the server closing its connections) ends it there, with the stop's result.
    while (m->active()) {
      auto r = co_await within(m->socket_.async_read_some(asio::buffer(sink), use_tuple), m->wake_);
      if (!r || std::get<0>(*r.done)) break;
    }
    if (m->active()) m->result_ = mirror_result::completed;
    m->socket_.close(ec);
  }
  metrics->mirrors[static_cast<std::size_t>(*m->result_)].fetch_add(1, std::memory_order_relaxed);
  metrics->mirror_bytes.fetch_add(m->sent_, std::memory_order_relaxed);
  shadow_end.end();
  if (*m->result_ != mirror_result::completed)
    main_log().debug("mirror to upstream {}: stopped ({}) after {} of {} bytes",
                     shadow->config().name, to_string(*m->result_), m->sent_, m->fed_);
}

}  // namespace zcproxy
