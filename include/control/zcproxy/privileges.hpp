// What the process may do once it serves: which user it runs as, and whether it may leave a core
// dump. Process-wide settings, made once at start-up from the main thread.
#pragma once

#include "zcproxy/config.hpp"

namespace zcproxy {

// Core dumps off (RLIMIT_CORE 0, not dumpable) unless `allowed`: a core holds whatever client
// bytes were in flight. Call before any client byte is read.
void limit_core_dumps(bool allowed);

// Started as root: become run_as's user and group, keeping no supplementary group, for good;
// call after every listener is bound. Not root but that user already: nothing changes. Throws
// std::runtime_error saying what failed; also when not root and not that user, as it cannot
// switch. `keep_net_admin`: the calling thread (and the threads it starts later: the workers)
// keeps CAP_NET_ADMIN and no other capability, for `source: client` (IP_TRANSPARENT).
void drop_privileges(const run_as_config& run_as, bool core_dumps, bool keep_net_admin = false);

}  // namespace zcproxy
