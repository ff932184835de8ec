#include "coil/fs/file.hpp"

namespace coil {

task<result<void>> file::read_exact_at(std::span<std::byte> buf, uint64_t offset) const {
  while (!buf.empty()) {
    auto n = co_await read_at(buf, offset);
    if (!n) {
      if (n.error() == std::errc::interrupted || n.error() == std::errc::resource_unavailable_try_again) continue;
      co_return fail(n.error());
    }
    if (*n == 0) co_return fail(errc::unexpected_eof);
    buf = buf.subspan(*n);
    if (offset != ops::current_position) offset += *n;
  }
  co_return result<void>{};
}

task<result<void>> file::write_all_at(std::span<const std::byte> buf, uint64_t offset) const {
  while (!buf.empty()) {
    auto n = co_await write_at(buf, offset);
    if (!n) {
      if (n.error() == std::errc::interrupted || n.error() == std::errc::resource_unavailable_try_again) continue;
      co_return fail(n.error());
    }
    if (*n == 0) co_return fail(errc::write_zero);
    buf = buf.subspan(*n);
    if (offset != ops::current_position) offset += *n;
  }
  co_return result<void>{};
}

task<result<uint64_t>> file::size() const {
  struct ::statx st {};
  auto r = co_await stat(&st, STATX_SIZE);
  if (!r) co_return fail(r.error());
  co_return static_cast<uint64_t>(st.stx_size);
}

}  // namespace coil
