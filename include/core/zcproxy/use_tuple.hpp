// The completion token of every coroutine in the proxy: `co_await op(use_tuple)` gives the
// error_code (and the result) as a tuple instead of throwing, because on the data path EOF,
// reset, aborted and timeout are ordinary outcomes.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

// GCC 12's -Wmismatched-new-delete is a false positive on every Asio coroutine: it reports the
// frame's operator delete (awaitable_frame_base, the pair of its operator new) as mismatched with
// the aligned_new it sees inlined through thread_info_base::allocate. Known upstream
// (chriskohlhoff/asio#1391; erigontech/silkworm#2046 silences it the same way). It is reported at
// each coroutine's closing brace, in the file that defines the coroutine: every such file includes
// this header, so the warning is off there and nowhere else.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace zcproxy {

inline constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

}  // namespace zcproxy
