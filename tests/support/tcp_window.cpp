// The peer's advertised receive window, from the kernel's own struct tcp_info: glibc's copy in
// <netinet/tcp.h> ends before tcpi_snd_wnd (Linux 6.2), and the two headers cannot meet in one
// file.
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <optional>

namespace test {

std::optional<std::uint32_t> peer_window(int s) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(s, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
      len < offsetof(tcp_info, tcpi_snd_wnd) + sizeof info.tcpi_snd_wnd)
    return std::nullopt;  // an older kernel: not told
  return info.tcpi_snd_wnd;
}

}  // namespace test
