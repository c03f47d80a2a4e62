#include <algorithm>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <cstring>

#include "zcproxy/stage.hpp"

namespace zcproxy {
namespace asio = boost::asio;

// Asio's non-blocking read_some/write_some rather than their async forms: the relay calls a
// stage when the socket was just reported ready (or to find out whether it is), and an async
// operation would cost a pass through the scheduler (one more epoll_wait) per round for nothing.

stage_result buffer_stage::fill(stream_socket& from, std::size_t max) {
  if (head_ == tail_) head_ = tail_ = 0;  // empty: start at the front, the whole buffer is room
  const std::size_t want = std::min(buffer_->size - tail_, max);
  for (;;) {
    boost::system::error_code ec;
    const std::size_t n = from.read_some(asio::buffer(buffer_->data.get() + tail_, want), ec);
    tail_ += n;
    if (!ec) return {n, stage_status::done};
    if (ec == asio::error::interrupted) continue;  // a signal came before anything moved
    // Drained: the next bytes raise a new edge.
    if (ec == asio::error::would_block) return {n, stage_status::would_block};
    if (ec == asio::error::eof) return {n, stage_status::eof};  // the FIN: read gave 0
    return {n, stage_status::error, ec.value()};  // ECONNRESET, ETIMEDOUT...: the source is gone
  }
}

void buffer_stage::put(const char* data, std::size_t n) {
  if (head_ == tail_) head_ = tail_ = 0;
  std::memcpy(buffer_->data.get() + tail_, data, n);
  tail_ += n;
}

stage_result buffer_stage::flush(stream_socket& to) {
  stage_result out;
  while (tail_ > head_) {
    boost::system::error_code ec;
    const std::size_t m = to.write_some(asio::buffer(data(), level()), ec);
    head_ += m;
    out.moved += m;
    if (!ec || ec == asio::error::interrupted) continue;  // short writes are normal; a signal
    // The socket's send buffer is full: the rest stays here until it has room.
    if (ec == asio::error::would_block) return {out.moved, stage_status::would_block};
    // EPIPE, ECONNRESET: the destination's peer is gone.
    return {out.moved, stage_status::error, ec.value()};
  }
  return out;
}

}  // namespace zcproxy
