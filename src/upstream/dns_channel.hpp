// One c-ares channel, set up for one name's resolve_config, driven by an io_context: c-ares says
// which of its sockets it wants read or written (its socket-state callback), each is waited on
// with Asio, and c-ares is given the socket when it is ready. Timeouts are the owner's to drive
// (due_in, process_timeouts), since several channels share one timer. On the io_context's
// thread only.
#pragma once

#include <ares.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>

#include "zcproxy/dns.hpp"

namespace zcproxy::detail {

class dns_channel {
 public:
  // `activity` is called after c-ares has handled a ready socket (an answer may have come, a
  // retry may be due).
  dns_channel(boost::asio::io_context& io, const resolve_config& how,
              std::function<void()> activity);
  ~dns_channel();  // what is in flight is abandoned: `done` is not called
  dns_channel(const dns_channel&) = delete;
  dns_channel& operator=(const dns_channel&) = delete;

  // Start resolving; `done` is called (on the io_context's thread) with the answer.
  void query(const dns_name& name, std::function<void(dns_answer)> done);
  // How long until c-ares must be called for a timeout; nullopt when nothing is in flight.
  std::optional<std::chrono::milliseconds> due_in() const;
  void process_timeouts();

 private:
  struct socket_wait;
  static void socket_state(void* self, ares_socket_t fd, int readable, int writable);
  void wait(const std::shared_ptr<socket_wait>& s, bool for_write);

  boost::asio::io_context& io_;
  std::function<void()> activity_;
  ares_channel ch_ = nullptr;
  std::map<ares_socket_t, std::shared_ptr<socket_wait>> sockets_;  // what c-ares wants watched
};

}  // namespace zcproxy::detail
