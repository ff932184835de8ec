#pragma once
// coil::file: an owned file descriptor with asynchronous operations on the
// current thread's runtime. Positional I/O takes explicit offsets; read()/
// write() use the file position, for pipes, FIFOs and character devices.
//
// Buffers passed to an operation must stay valid until it is awaited to
// completion; they may live in the awaiting coroutine's frame or on its stack.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <string>

#include "coil/core/bytes.hpp"
#include "coil/core/result.hpp"
#include "coil/core/transfer.hpp"
#include "coil/core/unique_fd.hpp"
#include "coil/io/ops.hpp"
#include "coil/rt/op.hpp"
#include "coil/rt/task.hpp"

namespace coil {

class file;

// An open in flight: yields result<file>.
using open_awaiter = op_awaiter<ops::openat, result<file>>;
// An openat2 in flight: yields result<file>.
using open_at_awaiter = op_awaiter<ops::openat2, result<file>>;

struct open_options {
  int flags = O_RDONLY;
  mode_t mode = 0644;
};

// An open file (or pipe, FIFO, character device) whose operations run on the
// calling thread's runtime. Move-only; the destructor closes synchronously.
class file {
 public:
  file() noexcept = default;
  file(unique_fd fd) noexcept : fd_(std::move(fd)) {}  // NOLINT: implicit, so open() can yield result<file>
  file(file&&) noexcept = default;
  file& operator=(file&&) noexcept = default;

  // Opens path relative to the working directory. path must stay valid until
  // the open is awaited.
  static open_awaiter open(const char* path, int flags = O_RDONLY, mode_t mode = 0644) noexcept {
    return open_awaiter(ops::openat{AT_FDCWD, path, flags, mode});
  }
  // Opens path relative to the directory dirfd under openat2's resolve
  // rules (RESOLVE_BENEATH keeps it inside dirfd, RESOLVE_NO_SYMLINKS...);
  // O_CLOEXEC is added. path must stay valid until the open is awaited.
  static open_at_awaiter open_at(int dirfd, const char* path, int flags, uint64_t resolve,
                                 mode_t mode = 0) noexcept {
    open_how how{};
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
    how.mode = (flags & (O_CREAT | O_TMPFILE)) != 0 ? mode : 0;
    how.resolve = resolve;
    return open_at_awaiter(ops::openat2{dirfd, path, how});
  }
  // O_RDWR|O_CREAT|O_TRUNC.
  static open_awaiter create(const char* path, mode_t mode = 0644) noexcept {
    return open(path, O_RDWR | O_CREAT | O_TRUNC, mode);
  }

  int fd() const noexcept { return fd_.get(); }
  bool is_open() const noexcept { return fd_.valid(); }
  // Gives the descriptor up without closing it.
  unique_fd release() noexcept { return unique_fd(fd_.release()); }

  // One read/write; may transfer less than asked (short I/O at EOF, pipes).
  op_awaiter<ops::read> read_at(std::span<std::byte> buf, uint64_t offset) const noexcept {
    return op_awaiter<ops::read>(ops::read{fd(), buf.data(), clamp(buf.size()), offset});
  }
  // One write of buf at offset; may transfer less than asked.
  op_awaiter<ops::write> write_at(std::span<const std::byte> buf, uint64_t offset) const noexcept {
    return op_awaiter<ops::write>(ops::write{fd(), buf.data(), clamp(buf.size()), offset});
  }
  // At the file position (non-seekable files).
  op_awaiter<ops::read> read(std::span<std::byte> buf) const noexcept {
    return read_at(buf, ops::current_position);
  }
  // Writes at the file position (non-seekable files).
  op_awaiter<ops::write> write(std::span<const std::byte> buf) const noexcept {
    return write_at(buf, ops::current_position);
  }
  // iov (the array itself, too) must stay valid until awaited.
  op_awaiter<ops::readv> readv_at(std::span<const iovec> iov, uint64_t offset) const noexcept {
    return op_awaiter<ops::readv>(ops::readv{fd(), iov.data(), static_cast<uint32_t>(iov.size()), offset});
  }
  // One vectored write at offset; iov (the array too) must stay valid until awaited.
  op_awaiter<ops::writev> writev_at(std::span<const iovec> iov, uint64_t offset) const noexcept {
    return op_awaiter<ops::writev>(ops::writev{fd(), iov.data(), static_cast<uint32_t>(iov.size()), offset});
  }

  // Loop over short transfers. read_exact_at fails with errc::unexpected_eof
  // if the file ends first; write_all_at with errc::write_zero if the kernel
  // stops accepting bytes.
  task<transfer_result> read_exact_at(std::span<std::byte> buf, uint64_t offset) const;
  // Writes all of buf at offset, looping over short writes.
  task<transfer_result> write_all_at(std::span<const std::byte> buf, uint64_t offset) const;
  // Text (std::string, string_view, literals, char spans) as bytes.
  template <char_data Chars>
  task<transfer_result> write_all_at(const Chars& text, uint64_t offset) const {
    return write_all_at(bytes_of(text), offset);
  }

  // The byte-stream interface (stream/concepts.hpp) at the file position:
  // pipes, FIFOs, character devices. A regular file at an explicit offset is
  // a file_cursor (stream/file_cursor.hpp).
  op_awaiter<ops::read> read_some(std::span<std::byte> buf) const noexcept { return read(buf); }
  op_awaiter<ops::write> write_some(std::span<const std::byte> buf) const noexcept { return write(buf); }
  op_awaiter<ops::writev> write_some_v(std::span<const iovec> iov) const noexcept {
    return writev_at(iov, ops::current_position);
  }

  // fsync(2) and fdatasync(2).
  op_awaiter<ops::fsync> fsync() const noexcept { return op_awaiter<ops::fsync>(ops::fsync{fd(), false}); }
  op_awaiter<ops::fsync> fdatasync() const noexcept { return op_awaiter<ops::fsync>(ops::fsync{fd(), true}); }
  // fallocate(2): reserves (mode 0), punches or zeroes [offset, offset + len).
  op_awaiter<ops::fallocate> fallocate(uint64_t offset, uint64_t len, int mode = 0) const noexcept {
    return op_awaiter<ops::fallocate>(ops::fallocate{fd(), mode, offset, len});
  }
  // Fills *out (which must outlive the await) with STATX_BASIC_STATS.
  op_awaiter<ops::statx> stat(struct ::statx* out, unsigned mask = STATX_BASIC_STATS) const noexcept {
    return op_awaiter<ops::statx>(ops::statx{fd(), "", AT_EMPTY_PATH, mask, out});
  }
  // Size in bytes, via statx.
  task<result<uint64_t>> size() const;

  // Closes on the ring. The descriptor is released from this object at once,
  // so nothing can use the number while the close is in flight.
  op_awaiter<ops::close> close() noexcept {
    return op_awaiter<ops::close>(ops::close{fd_.release()});
  }

 private:
  static uint32_t clamp(size_t n) noexcept {
    // The kernel caps one transfer at 0x7ffff000 bytes; keep the length
    // representable and let callers loop (read_exact_at, write_all_at).
    return n > 0x7ffff000u ? 0x7ffff000u : static_cast<uint32_t>(n);
  }
  unique_fd fd_;
};

// Path operations, relative to the working directory. Paths must stay valid
// until awaited.
inline op_awaiter<ops::unlinkat> unlink(const char* path) noexcept {
  return op_awaiter<ops::unlinkat>(ops::unlinkat{AT_FDCWD, path, 0});
}
// Removes an empty directory.
inline op_awaiter<ops::unlinkat> rmdir(const char* path) noexcept {
  return op_awaiter<ops::unlinkat>(ops::unlinkat{AT_FDCWD, path, AT_REMOVEDIR});
}
// renameat2(2); flags such as RENAME_NOREPLACE or RENAME_EXCHANGE.
inline op_awaiter<ops::renameat> rename(const char* from, const char* to, unsigned flags = 0) noexcept {
  return op_awaiter<ops::renameat>(ops::renameat{AT_FDCWD, from, AT_FDCWD, to, flags});
}
// Creates a directory.
inline op_awaiter<ops::mkdirat> mkdir(const char* path, mode_t mode = 0755) noexcept {
  return op_awaiter<ops::mkdirat>(ops::mkdirat{AT_FDCWD, path, mode});
}
// statx(2) of path into *out, which must outlive the await.
inline op_awaiter<ops::statx> stat(const char* path, struct ::statx* out, unsigned mask = STATX_BASIC_STATS) noexcept {
  return op_awaiter<ops::statx>(ops::statx{AT_FDCWD, path, 0, mask, out});
}

}  // namespace coil
