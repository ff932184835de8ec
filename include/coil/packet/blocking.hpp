#pragma once
// The packet layer in one include, plus result-shaped helpers and their
// blocking forms. A blocking form runs the very same packet through
// coil::block (rt/block.hpp: the thread's private runtime), so sync and async
// share one code path; on a thread already running a runtime it fails with
// errc::in_runtime instead of deadlocking (co_await the async form there).
#include <cstring>
#include <span>
#include <type_traits>

#include "coil/core/result.hpp"
#include "coil/packet/cached_space.hpp"
#include "coil/packet/file_space.hpp"
#include "coil/packet/mmap_space.hpp"
#include "coil/packet/packet.hpp"
#include "coil/packet/space.hpp"
#include "coil/rt/block.hpp"

namespace coil::packet {

// Reads buf.size() bytes at address; fails with the first error (by
// address) if any byte failed. Use read() for the per-range outcome.
inline task<result<void>> read_into(space& s, uint64_t address, std::span<std::byte> buf) {
  outcome o = co_await read(s, address, buf);
  if (!o.all_ok()) co_return fail(o.first_error());
  co_return result<void>{};
}

// A trivially copyable T at address.
template <class T>
  requires std::is_trivially_copyable_v<T>
task<result<T>> read_value(space& s, uint64_t address) {
  T value;
  outcome o = co_await read(s, address, std::as_writable_bytes(std::span(&value, 1)));
  if (!o.all_ok()) co_return fail(o.first_error());
  co_return value;
}

// Writes a trivially copyable T at address; fails with the first error.
template <class T>
  requires std::is_trivially_copyable_v<T>
task<result<void>> write_value(space& s, uint64_t address, T value) {
  outcome o = co_await write(s, address, std::as_bytes(std::span(&value, 1)));
  if (!o.all_ok()) co_return fail(o.first_error());
  co_return result<void>{};
}

// One read of a gather list (read_all).
struct read_request {
  uint64_t address = 0;
  std::span<std::byte> buf;
  outcome result;  // set by read_all
};

// Starts every request as its own packet in the same loop turn, so a
// batching space coalesces neighbours into one kernel operation, and waits
// for all of them; each request's outcome says which of its bytes failed.
// Returns how many requests had failed bytes. One allocation per call (the
// packets), none per request.
task<result<std::size_t>> read_all(space& s, std::span<read_request> reqs);

// The blocking form of any helper above: block(read_value<T>(s, a)).
template <class T>
result<T> block(task<result<T>> t) {
  return coil::block(std::move(t));
}

// Runs one packet to completion on a private runtime (see above).
result<outcome> run_blocking(space& s, direction d, std::byte* buf, uint64_t address, uint64_t len);

// Blocking forms of packet::read and packet::write (see run_blocking).
inline result<outcome> read_blocking(space& s, uint64_t address, std::span<std::byte> buf) {
  return run_blocking(s, direction::read, buf.data(), address, buf.size());
}
inline result<outcome> write_blocking(space& s, uint64_t address, std::span<const std::byte> buf) {
  return run_blocking(s, direction::write, const_cast<std::byte*>(buf.data()), address, buf.size());
}

}  // namespace coil::packet
