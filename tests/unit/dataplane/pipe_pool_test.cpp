#include "zcproxy/pipe_pool.hpp"

#include <unistd.h>

#include <catch2/catch.hpp>

using zcproxy::make_pipe_pool;

TEST_CASE("pipe pool: a returned empty pipe is reused", "[pipe_pool]") {
  auto pool = make_pipe_pool(1 << 20, 4);
  int read_fd = -1;
  {
    auto a = pool.get();
    REQUIRE(a);
    read_fd = a->read_fd();
    CHECK(a->capacity() >= 4096);
    CHECK(pool.leased() == 1);
  }
  CHECK(pool.leased() == 0);
  CHECK(pool.idle() == 1);
  auto b = pool.get();
  REQUIRE(b);
  CHECK(b->read_fd() == read_fd);
  CHECK(pool.idle() == 0);
}

TEST_CASE("pipe pool: pipes get the requested size where the kernel allows it", "[pipe_pool]") {
  auto pool = make_pipe_pool(1 << 20, 1);
  auto p = pool.get();
  REQUIRE(p);
  // As root F_SETPIPE_SZ may go up to pipe-max-size (1 MiB by default); never below 4 KiB.
  if (::geteuid() == 0) CHECK(p->capacity() == (1u << 20));
  CHECK(p->capacity() >= 4096);
}

TEST_CASE("pipe pool: a pipe that still holds bytes is closed, not reused", "[pipe_pool]") {
  auto pool = make_pipe_pool(64 << 10, 4);
  int write_fd = -1;
  {
    auto a = pool.get();
    REQUIRE(a);
    write_fd = a->write_fd();
    REQUIRE(::write(write_fd, "stale", 5) == 5);
    a->level = 5;  // as the relay tracks it
  }
  CHECK(pool.leased() == 0);
  CHECK(pool.idle() == 0);  // not pooled
  auto b = pool.get();
  REQUIRE(b);
  char buf[8];
  CHECK(::read(b->read_fd(), buf, sizeof buf) == -1);  // a fresh, empty pipe (non-blocking)
  CHECK(errno == EAGAIN);
}

TEST_CASE("pipe pool: at the cap a lease fails, and succeeds again after a return", "[pipe_pool]") {
  auto pool = make_pipe_pool(64 << 10, 2);
  auto a = pool.get();
  auto b = pool.get();
  REQUIRE(a);
  REQUIRE(b);
  auto c = pool.get();
  CHECK_FALSE(c);
  CHECK(pool.leased() == 2);
  a.reset();
  auto d = pool.get();
  CHECK(d);
}

TEST_CASE("pipe pool: a cap of 0 never hands out a pipe", "[pipe_pool]") {
  auto pool = make_pipe_pool(64 << 10, 0);
  CHECK_FALSE(pool.get());
}

TEST_CASE("pipe pool: idle pipes kept are bounded", "[pipe_pool]") {
  auto pool = make_pipe_pool(64 << 10, 100, 3);
  {
    std::vector<zcproxy::pipe_pool::lease> many;
    for (int i = 0; i < 10; ++i) many.push_back(pool.get());
    CHECK(pool.leased() == 10);
  }
  CHECK(pool.idle() == 3);
}
