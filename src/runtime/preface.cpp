// What a client sends before its payload: a PROXY protocol header, and on a routed listener the
// ClientHello whose server name picks the upstream.
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include "session_state.hpp"
#include "zcproxy/deadline.hpp"
#include "zcproxy/use_tuple.hpp"

namespace zcproxy::detail {
namespace asio = boost::asio;

// Bytes are peeked; once they are known to be all header (an incomplete but valid prefix) they
// are consumed, so the wait for more never wakes on bytes already seen. The payload behind the
// header stays in the socket for the relay (and splice).
asio::awaitable<outcome<proxy_protocol::header>> read_proxy_header(
    session_state& s, std::chrono::milliseconds limit) {
  auto refused = [&](std::string why) {
    return closing{s.shutting_down ? close_reason::shutdown : close_reason::proxy_header,
                   std::move(why)};
  };
  const int fd = s.client.native_handle();
  std::array<char, proxy_protocol::default_max_size> buf;
  std::size_t have = 0;  // header bytes consumed so far, at the start of buf
  s.timer->expires_after(limit);
  for (;;) {
    const ssize_t n = ::recv(fd, buf.data() + have, buf.size() - have, MSG_PEEK);
    if (n == 0) co_return refused("the client closed before a complete PROXY header");
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) co_return refused(std::strerror(errno));
      auto r = co_await within(s.client.async_wait(stream_socket::wait_read, use_tuple), *s.timer);
      if (s.shutting_down) co_return refused("");
      if (!r) co_return refused("no complete PROXY header within proxy_timeout");
      if (auto ec = std::get<0>(*r.done)) co_return refused(ec.message());
      continue;
    }
    const auto parsed = proxy_protocol::parse({buf.data(), have + static_cast<std::size_t>(n)});
    if (parsed.status == proxy_protocol::status::invalid) co_return refused(parsed.error);
    const bool complete = parsed.status == proxy_protocol::status::complete;
    const std::size_t take = complete ? parsed.header.size - have : static_cast<std::size_t>(n);
    // Those bytes are queued (just peeked): this read takes them at once.
    if (::recv(fd, buf.data() + have, take, 0) != static_cast<ssize_t>(take))
      co_return refused("reading the PROXY header failed");
    have += take;
    if (complete) {
      s.timer->cancel();
      co_return parsed.header;
    }
  }
}

// The bytes are consumed (waiting for more bytes while peeking would wake at once on those
// already seen), so the caller sends them upstream first; the rest stays for the relay.
asio::awaitable<outcome<client_preface>> read_client_hello(session_state& s,
                                                           std::chrono::milliseconds limit) {
  client_preface out;
  std::string& bytes = out.bytes;
  // A ClientHello over the cap is `invalid` from its declared length; the extra room holds the
  // record header and whatever follows the hello in the same read.
  bytes.resize(sni::default_max_hello_bytes + 1024);
  std::size_t have = 0;
  s.timer->expires_after(limit);
  for (;;) {
    auto r = co_await within(
        s.client.async_read_some(asio::buffer(bytes.data() + have, bytes.size() - have), use_tuple),
        *s.timer);
    if (s.shutting_down) co_return close_reason::shutdown;
    if (!r)
      co_return closing{close_reason::sni_timeout, "no complete ClientHello within sni_timeout (" +
                                                       std::to_string(have) + " bytes)"};
    auto [ec, n] = *r.done;
    if (ec)
      co_return closing{close_reason::client_hello,
                        ec == asio::error::eof ? "the client closed before a complete ClientHello"
                                               : ec.message()};
    have += n;
    sni::client_hello& hello = out.hello;
    hello = sni::parse_client_hello({bytes.data(), have});
    if (hello.status == sni::parse_status::incomplete && have == bytes.size()) {
      hello.status = sni::parse_status::invalid;
      hello.reason = "ClientHello larger than " + std::to_string(have) + " bytes";
    }
    if (hello.status != sni::parse_status::incomplete) {
      s.timer->cancel();
      bytes.resize(have);
      co_return out;
    }
  }
}

}  // namespace zcproxy::detail
