// The server's side of a take-over (the protocol is control/takeover.cpp): the new process
// inherits the old one's listening sockets before open(); the old one shares dups of its own,
// then hands over, draining while the new one accepts on the same queues.
#include <fcntl.h>

#include <boost/asio/post.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "generation.hpp"
#include "server_impl.hpp"
#include "worker.hpp"
#include "zcproxy/inherited.hpp"
#include "zcproxy/server.hpp"

namespace zcproxy {
namespace asio = boost::asio;

void server::inherit(std::vector<inherited_listener> sockets) {
  std::lock_guard lock(impl_->mutex);
  for (auto& s : sockets) impl_->inherited.push_back(std::move(s));
}

std::vector<inherited_listener> server::share_listeners() {
  auto& m = *impl_;
  std::lock_guard lock(m.mutex);  // no reload changes the listeners meanwhile
  if (!m.gen || m.threads.empty() || m.shutting_down)
    throw std::runtime_error("the server is not running");
  std::vector<inherited_listener> out;
  for (const auto& l : m.gen->listeners) out.push_back({l.config->name, l.config->bind, {}});
  // Each worker dups its own sockets, on its own thread.
  std::vector<std::vector<std::pair<std::uint64_t, unique_fd>>> got(m.workers.size());
  std::mutex done_mutex;
  std::condition_variable done_cv;
  std::size_t done = 0;
  int failed = 0;
  for (std::size_t i = 0; i < m.workers.size(); ++i)
    asio::post(m.workers[i]->io, [&, i, w = m.workers[i].get()] {
      int error = 0;
      for (auto& l : w->listeners) {
        if (!l.acceptor.is_open()) continue;  // a reload removed it: it is closing
        const int fd = ::fcntl(l.acceptor.native_handle(), F_DUPFD_CLOEXEC, 0);
        if (fd < 0) error = errno;  // EMFILE: a socket left out would strand its queue
        got[i].emplace_back(l.id, unique_fd(fd));
      }
      std::lock_guard done_lock(done_mutex);
      if (error) failed = error;
      ++done;
      done_cv.notify_all();
    });
  std::unique_lock done_lock(done_mutex);
  // Workers run until shutdown, which waits for the server's mutex: they answer.
  done_cv.wait(done_lock, [&] { return done == m.workers.size(); });
  if (failed)
    throw std::system_error(failed, std::generic_category(), "cannot share a listening socket");
  for (auto& per_worker : got)
    for (auto& [id, fd] : per_worker)
      for (std::size_t k = 0; k < m.gen->listeners.size(); ++k) {
        if (m.gen->listeners[k].id != id) continue;
        // A Unix listener's workers hold dups of one socket: one is enough.
        if (!(m.gen->listeners[k].bound.local && !out[k].fds.empty()))
          out[k].fds.push_back(std::move(fd));
      }
  return out;
}

void server::hand_over() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->shutting_down = true;
    impl_->handed_over = true;
  }
  for (auto& w : impl_->workers)
    asio::post(w->io, [w = w.get()] {
      w->handed_over = true;
      w->shutdown(false);
    });
}

}  // namespace zcproxy
