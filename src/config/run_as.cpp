// user: and group:, who the process becomes once its listeners are bound. Names are looked up
// now, so an unknown user is a config error rather than a failure after the listeners are open.
#include <grp.h>
#include <pwd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "checker.hpp"

namespace zcproxy::detail {
namespace {

// getpw*_r / getgr*_r, with a buffer grown while the entry does not fit (a large LDAP entry, a
// group with many members). The reentrant forms: the config is also loaded on reload, beside
// running threads. Returns the call's error (0: found, or no such entry).
template <typename Lookup>
int lookup(Lookup call) {
  std::vector<char> buffer(16384);
  int rc;
  while ((rc = call(buffer)) == ERANGE && buffer.size() < (1u << 24))
    buffer.resize(buffer.size() * 2);
  return rc;
}

// Fills r.uid and r.gid (the user's primary group); false when reported.
bool find_user(checker& c, const entry& user, const std::string& name, bool group_given,
               run_as_config& r) {
  // A number past uid_t would wrap round to another user (2^32 is root): refused before any
  // lookup.
  auto uid = parse_digits(name);
  if (uid && *uid >= std::numeric_limits<uid_t>::max()) {
    c.fail(user, "user",
           "expected a uid below " + std::to_string(std::numeric_limits<uid_t>::max()) + ", got " +
               name);
    return false;
  }
  passwd pw{};
  passwd* found = nullptr;
  const int rc = lookup([&](std::vector<char>& buffer) {
    return uid ? ::getpwuid_r(static_cast<uid_t>(*uid), &pw, buffer.data(), buffer.size(), &found)
               : ::getpwnam_r(name.c_str(), &pw, buffer.data(), buffer.size(), &found);
  });
  if (found) {
    r.uid = pw.pw_uid;
    r.gid = pw.pw_gid;
  } else if (uid) {
    r.uid = static_cast<uid_t>(*uid);  // a numeric uid need not have a passwd entry
    if (!group_given) {
      c.fail(user, "user",
             "expected group: too, since uid " + name +
                 " has no passwd entry to take a primary group from");
      return false;
    }
  } else {
    c.fail(user, "user",
           "expected a user of this system, got " + quoted(name) +
               (rc != 0 ? std::string(": ") + std::strerror(rc) : ": no such user"));
    return false;
  }
  return true;
}

// Fills r.group and r.gid; false when reported.
bool find_group(checker& c, const entry& group, run_as_config& r) {
  const auto name = c.scalar(group, "group", "a group name or numeric gid");
  if (!name) return false;
  r.group = *name;
  const auto gid = parse_digits(*name);
  if (gid && *gid >= std::numeric_limits<gid_t>::max()) {
    c.fail(group, "group",
           "expected a gid below " + std::to_string(std::numeric_limits<gid_t>::max()) + ", got " +
               *name);
    return false;
  }
  ::group gr{};
  ::group* found = nullptr;
  const int rc = lookup([&](std::vector<char>& buffer) {
    return gid ? ::getgrgid_r(static_cast<gid_t>(*gid), &gr, buffer.data(), buffer.size(), &found)
               : ::getgrnam_r(name->c_str(), &gr, buffer.data(), buffer.size(), &found);
  });
  if (found) {
    r.gid = gr.gr_gid;
  } else if (gid) {
    r.gid = static_cast<gid_t>(*gid);
  } else {
    c.fail(group, "group",
           "expected a group of this system, got " + quoted(*name) +
               (rc != 0 ? std::string(": ") + std::strerror(rc) : ": no such group"));
    return false;
  }
  return true;
}

}  // namespace

void check_run_as(checker& c, const entry* user, const entry* group,
                  std::optional<run_as_config>& out) {
  if (!user) {
    if (group) c.fail(*group, "group", "expected user: as well (group alone is not switched to)");
    return;
  }
  run_as_config r;
  const auto name = c.scalar(*user, "user", "a user name or numeric uid");
  if (!name) return;
  r.user = *name;
  if (!find_user(c, *user, *name, group != nullptr, r)) return;
  if (group && !find_group(c, *group, r)) return;
  out = r;
}

}  // namespace zcproxy::detail
