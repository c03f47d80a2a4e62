#include "zcproxy/connect.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <variant>

#include "zcproxy/use_tuple.hpp"

namespace zcproxy {
namespace asio = boost::asio;
using namespace asio::experimental::awaitable_operators;

asio::awaitable<connect_result> connect_within(stream_socket& s, stream_endpoint to,
                                               std::chrono::milliseconds limit,
                                               asio::steady_timer& timer) {
  boost::system::error_code ec;
  s.open(to.protocol(), ec);
  if (!ec) s.non_blocking(true, ec);
  timer.expires_after(limit);
  auto r = co_await (s.async_connect(to, use_tuple) || timer.async_wait(use_tuple));
  connect_result out;
  if (r.index() == 0) {
    out.error = std::get<0>(std::get<0>(r));
  } else if (auto timer_ec = std::get<0>(std::get<1>(r))) {
    out.error = timer_ec;  // the timer was cancelled: a stop, not the limit
  } else {
    out.error = asio::error::timed_out;
    out.timed_out = true;
  }
  if (out.error) s.close(ec);
  co_return out;
}

asio::awaitable<connect_result> connect_within(stream_socket& s, stream_endpoint to,
                                               std::chrono::milliseconds limit) {
  asio::steady_timer timer(s.get_executor());
  co_return co_await connect_within(s, to, limit, timer);
}

}  // namespace zcproxy
