#include "listener_state.hpp"

namespace zcproxy {

bool listener_state::admit(const std::string& ip, unsigned max_total, unsigned max_per_ip) {
  if (open.fetch_add(1, std::memory_order_relaxed) >= max_total && max_total != 0) {
    open.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  if (max_per_ip == 0) return true;
  std::lock_guard lock(per_ip_mutex);
  unsigned& n = per_ip[ip];
  if (n >= max_per_ip) {
    if (n == 0) per_ip.erase(ip);
    open.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  ++n;
  return true;
}

void listener_state::release(const std::string& ip, bool per_ip_counted) {
  open.fetch_sub(1, std::memory_order_relaxed);
  if (!per_ip_counted) return;
  std::lock_guard lock(per_ip_mutex);
  auto it = per_ip.find(ip);
  if (it != per_ip.end() && --it->second == 0) per_ip.erase(it);
}

}  // namespace zcproxy
