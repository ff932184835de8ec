#include "coil/stream/copy.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace coil::detail {

task<transfer_result> copy_spliced(net::stream_socket& from, net::stream_socket& to, size_t pipe_size) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) < 0) co_return fail(errno_code(errno));
  const unique_fd out(p[0]);
  const unique_fd in(p[1]);
  // The pipe holds one chunk; the kernel may cap it (fs.pipe-max-size), and
  // a smaller pipe still works, in smaller chunks.
  if (pipe_size > 0) (void)::fcntl(in.get(), F_SETPIPE_SZ, static_cast<int>(pipe_size));
  const long got = ::fcntl(in.get(), F_GETPIPE_SZ);
  const size_t chunk = got > 0 ? static_cast<size_t>(got) : 65536;
  size_t total = 0;
  for (;;) {
    result<size_t> n = co_await from.splice_to_pipe(in.get(), chunk);
    if (!n) {
      if (n.error() == std::errc::interrupted) continue;
      co_return transfer_result(total, n.error());
    }
    if (*n == 0) co_return transfer_result(total, {});
    size_t left = *n;
    while (left > 0) {
      result<size_t> w = co_await to.splice_from_pipe(out.get(), left);
      if (!w) {
        if (w.error() == std::errc::interrupted) continue;
        co_return transfer_result(total, w.error());
      }
      if (*w == 0) co_return transfer_result(total, make_error_code(errc::write_zero));
      left -= *w;
      total += *w;
    }
  }
}

}  // namespace coil::detail
