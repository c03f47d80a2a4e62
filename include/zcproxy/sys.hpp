// The syscall seam: the relay calls splice(2) through this pointer so that a test can stand in a
// kernel that refuses it (EINVAL) without needing such a kernel. Set it only while no server runs.
#pragma once

#include <fcntl.h>
#include <sys/types.h>

namespace zcproxy::sys {

using splice_fn = ssize_t (*)(int fd_in, loff_t* off_in, int fd_out, loff_t* off_out, size_t len,
                              unsigned int flags);

inline splice_fn splice = ::splice;

}  // namespace zcproxy::sys
