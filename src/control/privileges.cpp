#include "zcproxy/privileges.hpp"

#include <grp.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace zcproxy {

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

// After a switch from root made with PR_SET_KEEPCAPS: CAP_NET_ADMIN alone, permitted and
// effective (the switch cleared the effective set and kept every permitted one).
void keep_only_net_admin() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  data[CAP_NET_ADMIN / 32].effective = data[CAP_NET_ADMIN / 32].permitted = 1u
                                                                            << (CAP_NET_ADMIN % 32);
  if (::syscall(SYS_capset, &header, data) != 0) fail("cannot keep CAP_NET_ADMIN (capset)");
  ::prctl(PR_SET_KEEPCAPS, 0);
}

}  // namespace

void limit_core_dumps(bool allowed) {
  if (allowed) return;  // the operator's own limits and core_pattern apply
  const rlimit none{0, 0};
  // Both: RLIMIT_CORE stops the kernel writing a file, but a core_pattern pipe (systemd-coredump,
  // apport) is still run for a dumpable process; not dumpable stops that too.
  if (::setrlimit(RLIMIT_CORE, &none) != 0) fail("cannot turn core dumps off (setrlimit)");
  if (::prctl(PR_SET_DUMPABLE, 0) != 0) fail("cannot turn core dumps off (prctl)");
}

void drop_privileges(const run_as_config& run_as, bool core_dumps, bool keep_net_admin) {
  const std::string who = "user " + run_as.user + " (uid " + std::to_string(run_as.uid) + ", gid " +
                          std::to_string(run_as.gid) + ")";
  if (::geteuid() != 0) {
    // Not root: nothing to give up, and nothing to switch with. Already that user is fine.
    if (::geteuid() == run_as.uid && ::getegid() == run_as.gid) return;
    errno = EPERM;
    fail("cannot switch to " + who + ": zcproxy was not started as root");
  }
  // Order matters: groups and gid while still root, the uid last (after it nothing can be
  // changed back). setresuid sets real, effective and saved uid, so the switch is for good.
  const gid_t gid = run_as.gid;
  if (::setgroups(0, nullptr) != 0) fail("cannot switch to " + who + " (setgroups)");
  // The permitted capabilities survive the uid's change only so (this thread's flag).
  if (keep_net_admin && ::prctl(PR_SET_KEEPCAPS, 1) != 0)
    fail("cannot keep CAP_NET_ADMIN (PR_SET_KEEPCAPS)");
  if (::setresgid(gid, gid, gid) != 0) fail("cannot switch to " + who + " (setresgid)");
  if (::setresuid(run_as.uid, run_as.uid, run_as.uid) != 0)
    fail("cannot switch to " + who + " (setresuid)");
  if (keep_net_admin) keep_only_net_admin();
  // A uid of 0 given on purpose keeps root; otherwise regaining it must fail.
  if (run_as.uid != 0 && ::setuid(0) == 0) {
    errno = EPERM;
    fail("switched to " + who + " but could become root again; refusing to run");
  }
  // The kernel clears "dumpable" on a uid change; give it back only when cores are wanted.
  if (core_dumps) ::prctl(PR_SET_DUMPABLE, 1);
}

}  // namespace zcproxy
