// One generation of the configuration with its run-time pieces (listeners, upstreams), replaced
// whole by a reload. Built by build_generation(), for the start and for every reload alike.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "zcproxy/acl.hpp"
#include "zcproxy/config.hpp"
#include "zcproxy/dns.hpp"
#include "zcproxy/inherited.hpp"
#include "zcproxy/socket.hpp"

namespace zcproxy {

class upstream;
struct listener_state;

// One listener of a generation. A listener that a reload keeps (same address) keeps its id, its
// sockets and its state; its settings are the new generation's.
struct listener_runtime {
  std::uint64_t id;                       // names its sockets on the workers (see bound_listener)
  const listener_config* config;          // in the generation's cfg
  address bound;                          // where it listens (a port of 0 resolved)
  acl access;                             // built from allow/deny
  std::shared_ptr<listener_state> state;  // counts, shared with the generation before when kept
  upstream* target;                       // in the generation; nullptr for a listener with routes
  // Its sockets were inherited (see inherited.hpp): a Unix socket's file is not this process's to
  // remove (systemd's, or the old process's while a take-over can still fail).
  bool inherited = false;
};

// Immutable once built. Every session holds the generation it started in, so a reload never pulls
// a listener's or an upstream's settings from under an open connection.
struct generation {
  explicit generation(config c) : cfg(std::move(c)) {}
  generation(const generation&) = delete;  // its listeners point into its cfg
  generation& operator=(const generation&) = delete;

  config cfg;
  std::vector<std::shared_ptr<upstream>> upstreams;  // in cfg.upstreams order
  std::vector<listener_runtime> listeners;           // in cfg.listeners order
  std::uint64_t next_listener_id = 1;                // for the listeners of the next generation

  upstream* find(std::string_view name) const;
};

// What a worker is handed for each listener of a new generation, in its order: the id of a
// listener it already runs (no acceptors), or new acceptors (on this worker's io_context): one
// it opened, or those inherited sockets gave it (see adopt_listener).
struct listener_plan {
  std::uint64_t id;
  std::vector<stream_acceptor> acceptors;
};

struct built_generation {
  std::shared_ptr<const generation> gen;
  std::vector<std::vector<listener_plan>> plans;  // one per worker, each in gen's listener order
};

// The addresses each name resolves to now (the last good answer's).
using resolved_names = std::vector<std::pair<dns_name, std::vector<address>>>;
// `declared` as a generation runs it: each endpoint given by name replaced by one endpoint per
// address the name resolves to now (none before it has), with the name's weight.
config with_resolved_names(config declared, const resolved_names& names);

// `cfg` as a generation after `previous` (nullptr at start-up), on `workers` (one io_context
// each). At start-up, a listener `inherited` has sockets for (see take_sockets) accepts on them
// instead of binding; they are taken out of it. Listeners whose address is unchanged keep their
// sockets (nothing queued is dropped); the others open now, so that an address in use refuses the
// whole generation. Upstreams that did not change are carried over (load, health, round-robin
// position); a changed one starts afresh but keeps its endpoints' health. Throws std::runtime_error
// naming the listener and the address when one cannot be bound; what it opened is closed and
// removed again then.
built_generation build_generation(config cfg, const generation* previous,
                                  const std::vector<boost::asio::io_context*>& workers,
                                  std::vector<inherited_listener>* inherited = nullptr);

}  // namespace zcproxy
