#include "coil/fs/file.hpp"

namespace coil {

task<transfer_result> file::read_exact_at(std::span<std::byte> buf, uint64_t offset) const {
  std::size_t done = 0;
  while (done < buf.size()) {
    auto n = co_await read_at(buf.subspan(done), offset);
    if (!n) {
      if (n.error() == std::errc::interrupted || n.error() == std::errc::resource_unavailable_try_again) continue;
      co_return transfer_result(done, n.error());
    }
    if (*n == 0) co_return transfer_result(done, make_error_code(errc::unexpected_eof));
    done += *n;
    if (offset != ops::current_position) offset += *n;
  }
  co_return transfer_result(done, {});
}

task<transfer_result> file::write_all_at(std::span<const std::byte> buf, uint64_t offset) const {
  std::size_t done = 0;
  while (done < buf.size()) {
    auto n = co_await write_at(buf.subspan(done), offset);
    if (!n) {
      if (n.error() == std::errc::interrupted || n.error() == std::errc::resource_unavailable_try_again) continue;
      co_return transfer_result(done, n.error());
    }
    if (*n == 0) co_return transfer_result(done, make_error_code(errc::write_zero));
    done += *n;
    if (offset != ops::current_position) offset += *n;
  }
  co_return transfer_result(done, {});
}

task<result<uint64_t>> file::size() const {
  struct ::statx st {};
  auto r = co_await stat(&st, STATX_SIZE);
  if (!r) co_return fail(r.error());
  co_return static_cast<uint64_t>(st.stx_size);
}

}  // namespace coil
