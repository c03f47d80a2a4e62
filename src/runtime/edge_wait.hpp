// A wait for a listening socket's next epoll edge, for an accept loop that has just met EAGAIN.
// Asio's async_wait re-arms the socket with an epoll_ctl(MOD) on every wait, so that a readiness
// it may have missed is reported again; a caller that has just found the socket empty has missed
// nothing, and the socket's next edge (the next client) wakes the wait without the re-arm. Its
// completion, cancellation (cancel, close) and destruction are Asio's own. Without Asio's
// internals (ZCPROXY_ASIO_INTERNALS 0, see asio_socket.hpp) it is async_wait.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <memory>
#include <utility>

#include "zcproxy/asio_socket.hpp"

#if ZCPROXY_ASIO_INTERNALS
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/memory.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>
#endif

namespace zcproxy::detail {

#if ZCPROXY_ASIO_INTERNALS

// basic_socket_acceptor keeps its implementation private, not protected as basic_socket does: its
// member pointer is named in an explicit instantiation, where access is not checked.
struct acceptor_impl_tag {
  friend auto acceptor_impl(acceptor_impl_tag);
};
template <auto Member>
struct expose_acceptor_impl {
  friend auto acceptor_impl(acceptor_impl_tag) { return Member; }
};
template struct expose_acceptor_impl<&stream_acceptor::impl_>;

inline auto& asio_acceptor_impl(stream_acceptor& a) {
  return (a.*acceptor_impl(acceptor_impl_tag{})).get_implementation();
}

template <typename Handler, typename IoExecutor>
class edge_wait_op : public boost::asio::detail::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(edge_wait_op);

  edge_wait_op(Handler& handler, const IoExecutor& io_ex)
      : reactor_op(boost::system::error_code(), &edge_wait_op::do_perform,
                   &edge_wait_op::do_complete),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  // The reactor's first try, made inside start_op, is not an edge: wait on. Any later call is.
  bool starting = true;

  static status do_perform(reactor_op* base) {
    return static_cast<edge_wait_op*>(base)->starting ? not_done : done;
  }

  static void do_complete(void* owner, boost::asio::detail::operation* base,
                          const boost::system::error_code&, std::size_t) {
    auto* o = static_cast<edge_wait_op*>(base);
    ptr p = {std::addressof(o->handler_), o, o};
    boost::asio::detail::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    // The handler is moved out so the op's memory is freed before the upcall (Asio's rule).
    boost::asio::detail::binder1<Handler, boost::system::error_code> handler(o->handler_, o->ec_);
    p.h = std::addressof(handler.handler_);
    p.reset();
    if (owner) {
      boost::asio::detail::fenced_block b(boost::asio::detail::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

 private:
  Handler handler_;
  boost::asio::detail::handler_work<Handler, IoExecutor> work_;
};

// Completes with (error) at the socket's next edge, or when it is cancelled or closed.
template <typename Token>
auto async_wait_edge(stream_acceptor& a, Token&& token) {
  return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
      [&a](auto handler) {
        namespace ad = boost::asio::detail;
        using op = edge_wait_op<std::decay_t<decltype(handler)>, stream_acceptor::executor_type>;
        auto& reactor = boost::asio::use_service<ad::reactor>(
            boost::asio::query(a.get_executor(), boost::asio::execution::context));
        typename op::ptr p = {std::addressof(handler), op::ptr::allocate(handler), 0};
        p.p = new (p.v) op(handler, a.get_executor());
        auto& impl = asio_acceptor_impl(a);
        op* started = p.p;
        p.v = p.p = 0;
        reactor.start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, started, false,
                         true);
        // Still queued (or posted with an error, not yet run): this thread runs its completion.
        started->starting = false;
      },
      token);
}

#else

template <typename Token>
auto async_wait_edge(stream_acceptor& a, Token&& token) {
  return a.async_wait(stream_acceptor::wait_read, std::forward<Token>(token));
}

#endif

}  // namespace zcproxy::detail
