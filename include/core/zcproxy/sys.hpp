// The syscall seam: every splice(2) and tee(2) of the data plane (the relay's stages, the
// mirror), the copy stage's recvmsg(2) and send(2), and a fallback response's sendfile(2), go
// through these pointers so that a test can
// stand in a kernel that refuses them (EINVAL) without needing such a kernel. Set them only while
// no server runs.
#pragma once

#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <boost/system/error_code.hpp>

namespace zcproxy::sys {

using recvmsg_fn = ssize_t (*)(int fd, msghdr* msg, int flags);

inline recvmsg_fn recvmsg = ::recvmsg;

using send_fn = ssize_t (*)(int fd, const void* buf, size_t len, int flags);

inline send_fn send = ::send;

using splice_fn = ssize_t (*)(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len,
                              unsigned int flags);

inline splice_fn splice = ::splice;

using tee_fn = ssize_t (*)(int fd_in, int fd_out, size_t len, unsigned int flags);

inline tee_fn tee = ::tee;

using sendfile_fn = ssize_t (*)(int out_fd, int in_fd, off_t* offset, size_t count);

inline sendfile_fn sendfile = ::sendfile;

// An errno as the data plane passes it on past the seam: the error_code Asio's own operations
// give, so one type carries a stage's error, a wait's and a connect's.
inline boost::system::error_code errno_error(int e) {
  return {e, boost::system::system_category()};
}

}  // namespace zcproxy::sys
