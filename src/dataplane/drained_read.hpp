// A read that tells Asio when it drained the socket. Asio's async_read_some tries a read before
// it waits (a speculative read) unless the last read on the socket met EOF; when the socket is
// empty, that try is a recv(2) answering EAGAIN, one system call per wait for nothing (two of the
// six of a keep-alive request). This read asks the kernel how many bytes it left behind
// (TCP_INQ: a control message of the same recvmsg(2), asked for beforehand by set_read_hint) and,
// when none, reports the read to the reactor as "done and exhausted", as Asio's own reads report
// EOF: the reactor then tries no read before the next wait, until the socket's next epoll edge (the
// next bytes raise one), and waits without an epoll_ctl. The count, not a short read, is the test:
// a read stops short of TCP urgent data, or of a Unix socket's message with other credentials, with
// bytes left behind and no edge to come. Without the control message (not TCP, or TCP_INQ not set)
// the read is an ordinary one. Asio's reactor op for a read otherwise; its cancel, close and
// destruction are Asio's own, and it takes per-operation cancellation (a slot bound to its handler:
// `||` with a timer, bind_cancellation_slot) as Asio's async_receive does. Without Asio's internals
// (ZCPROXY_ASIO_INTERNALS 0, see asio_socket.hpp) it is async_read_some.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/memory.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>
#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "zcproxy/asio_socket.hpp"

namespace zcproxy::detail {

#if ZCPROXY_ASIO_INTERNALS

// The events epoll reported for a socket in the reactor pass under way: Asio keeps them in the
// socket's descriptor state (an operation, whose task result they are) while it performs the
// socket's queued operations; outside such a pass they are those of an earlier one.
struct reported_events : boost::asio::detail::scheduler_operation {
  static unsigned of(boost::asio::detail::epoll_reactor::per_descriptor_data d) {
    // A private base of the descriptor state: only a C-style cast names it.
    const auto* op = (const boost::asio::detail::scheduler_operation*)d;
    return op->*&reported_events::task_result_;
  }
};

template <typename Handler, typename IoExecutor>
class drained_read_op : public boost::asio::detail::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(drained_read_op);

  drained_read_op(int fd, boost::asio::detail::epoll_reactor::per_descriptor_data descriptor,
                  boost::asio::mutable_buffer buffer, Handler& handler, const IoExecutor& io_ex)
      : reactor_op(boost::system::error_code(), &drained_read_op::do_perform,
                   &drained_read_op::do_complete),
        fd_(fd),
        descriptor_(descriptor),
        buffer_(buffer),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static status do_perform(reactor_op* base) {
    auto* o = static_cast<drained_read_op*>(base);
    iovec iov{o->buffer_.data(), o->buffer_.size()};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    for (;;) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      const ssize_t n = ::recvmsg(o->fd_, &msg, 0);
      if (n < 0 && errno == EINTR) continue;  // a signal came before anything moved
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return not_done;  // wait for an edge
      if (n < 0) {
        o->ec_ = boost::system::error_code(errno, boost::asio::error::get_system_category());
        return done;
      }
      o->bytes_transferred_ = static_cast<std::size_t>(n);
      if (n == 0 && o->buffer_.size() > 0) {
        o->ec_ = boost::asio::error::eof;  // the FIN, as async_read_some reports it
        return done_and_exhausted;
      }
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        int left = 1;
        if (c->cmsg_level == SOL_TCP && c->cmsg_type == TCP_CM_INQ &&
            c->cmsg_len >= CMSG_LEN(sizeof left)) {
          std::memcpy(&left, CMSG_DATA(c), sizeof left);
          // Nothing behind these bytes, and no error or hangup reported with them.
          if (left == 0 && !(reported_events::of(o->descriptor_) & (EPOLLERR | EPOLLHUP)))
            return done_and_exhausted;
        }
      }
      return done;
    }
  }

  static void do_complete(void* owner, boost::asio::detail::operation* base,
                          const boost::system::error_code&, std::size_t) {
    auto* o = static_cast<drained_read_op*>(base);
    ptr p = {std::addressof(o->handler_), o, o};
    boost::asio::detail::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    // The handler is moved out so the op's memory is freed before the upcall (Asio's rule: a part
    // of the handler may own that memory).
    boost::asio::detail::binder2<Handler, boost::system::error_code, std::size_t> handler(
        o->handler_, o->ec_, o->bytes_transferred_);
    p.h = std::addressof(handler.handler_);
    p.reset();
    if (owner) {
      boost::asio::detail::fenced_block b(boost::asio::detail::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

 private:
  int fd_;
  boost::asio::detail::epoll_reactor::per_descriptor_data descriptor_;
  boost::asio::mutable_buffer buffer_;
  Handler handler_;
  boost::asio::detail::handler_work<Handler, IoExecutor> work_;
};

// Cancels a pending drained read on its descriptor when the slot bound to its handler is emitted:
// what Asio's reactor_op_cancellation (private to its socket service) does for async_receive.
class drained_read_cancellation {
 public:
  drained_read_cancellation(boost::asio::detail::reactor& reactor,
                            boost::asio::detail::reactor::per_descriptor_data& data, int fd)
      : reactor_(reactor), data_(data), fd_(fd) {}
  void operator()(boost::asio::cancellation_type_t type) {
    using boost::asio::cancellation_type;
    if (!!(type &
           (cancellation_type::terminal | cancellation_type::partial | cancellation_type::total)))
      reactor_.cancel_ops_by_key(fd_, data_, boost::asio::detail::reactor::read_op, this);
  }

 private:
  boost::asio::detail::reactor& reactor_;
  boost::asio::detail::reactor::per_descriptor_data& data_;
  int fd_;
};

// Reads at most `buffer`'s size from `s` (open, non-blocking, on a reactor's io_context), as
// async_read_some does; completes with (error, bytes).
template <typename Token>
auto async_read_drained(stream_socket& s, boost::asio::mutable_buffer buffer, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      [&s, buffer](auto handler) {
        namespace ad = boost::asio::detail;
        using op = drained_read_op<std::decay_t<decltype(handler)>, stream_socket::executor_type>;
        auto& reactor = boost::asio::use_service<ad::reactor>(
            boost::asio::query(s.get_executor(), boost::asio::execution::context));
        const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(handler);
        auto slot = boost::asio::get_associated_cancellation_slot(handler);
        typename op::ptr p = {std::addressof(handler), op::ptr::allocate(handler), 0};
        auto& impl = asio_impl(s);
        p.p = new (p.v) op(impl.socket_, impl.reactor_data_, buffer, handler, s.get_executor());
        if (slot.is_connected())
          p.p->cancellation_key_ = &slot.template emplace<drained_read_cancellation>(
              reactor, impl.reactor_data_, impl.socket_);
        reactor.start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, p.p,
                         is_continuation, true);
        p.v = p.p = 0;
      },
      token);
}

#else

template <typename Token>
auto async_read_drained(stream_socket& s, boost::asio::mutable_buffer buffer, Token&& token) {
  return s.async_read_some(buffer, std::forward<Token>(token));
}

#endif

}  // namespace zcproxy::detail
