// The completion token of every coroutine in the proxy: `co_await op(use_tuple)` gives the
// error_code (and the result) as a tuple instead of throwing, because on the data path EOF,
// reset, aborted and timeout are ordinary outcomes.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace zcproxy {

inline constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

}  // namespace zcproxy
