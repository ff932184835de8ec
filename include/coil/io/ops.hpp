#pragma once
// Operations: one plain struct per kind. Each knows its opcode, how to fill
// an io_uring SQE (prep), how to perform itself as a blocking syscall
// (perform: used by fallbacks and worker pools), and how to turn the kernel's
// result into a typed result (complete). No coroutine or driver knowledge.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include <liburing.h>

#include "coil/core/result.hpp"
#include "coil/core/unique_fd.hpp"

namespace coil::ops {

// Offset meaning "use and advance the file position" (pipes, sockets, ttys).
inline constexpr uint64_t current_position = static_cast<uint64_t>(-1);

namespace detail {
inline int32_t kernel_ret(long r) noexcept { return r < 0 ? -errno : static_cast<int32_t>(r); }
inline result<size_t> to_size(int32_t res) noexcept {
  return from_kernel(res).map([](uint32_t n) { return static_cast<size_t>(n); });
}
inline result<void> to_void(int32_t res) noexcept {
  if (res < 0) return fail(errno_code(-res));
  return {};
}
}  // namespace detail

struct nop {
  static constexpr uint8_t opcode = IORING_OP_NOP;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_nop(&s); }
  int32_t perform() const noexcept { return 0; }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

struct read {
  static constexpr uint8_t opcode = IORING_OP_READ;
  int fd;
  void* buf;
  uint32_t len;
  uint64_t offset;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_read(&s, fd, buf, len, offset); }
  int32_t perform() const noexcept {
    return detail::kernel_ret(offset == current_position ? ::read(fd, buf, len)
                                                         : ::pread(fd, buf, len, static_cast<off_t>(offset)));
  }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

struct write {
  static constexpr uint8_t opcode = IORING_OP_WRITE;
  int fd;
  const void* buf;
  uint32_t len;
  uint64_t offset;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_write(&s, fd, buf, len, offset); }
  int32_t perform() const noexcept {
    return detail::kernel_ret(offset == current_position ? ::write(fd, buf, len)
                                                         : ::pwrite(fd, buf, len, static_cast<off_t>(offset)));
  }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

struct readv {
  static constexpr uint8_t opcode = IORING_OP_READV;
  int fd;
  const iovec* iov;
  uint32_t iovcnt;
  uint64_t offset;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_readv(&s, fd, iov, iovcnt, offset); }
  int32_t perform() const noexcept {
    return detail::kernel_ret(offset == current_position
                                  ? ::readv(fd, iov, static_cast<int>(iovcnt))
                                  : ::preadv(fd, iov, static_cast<int>(iovcnt), static_cast<off_t>(offset)));
  }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

struct writev {
  static constexpr uint8_t opcode = IORING_OP_WRITEV;
  int fd;
  const iovec* iov;
  uint32_t iovcnt;
  uint64_t offset;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_writev(&s, fd, iov, iovcnt, offset); }
  int32_t perform() const noexcept {
    return detail::kernel_ret(offset == current_position
                                  ? ::writev(fd, iov, static_cast<int>(iovcnt))
                                  : ::pwritev(fd, iov, static_cast<int>(iovcnt), static_cast<off_t>(offset)));
  }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

struct fsync {
  static constexpr uint8_t opcode = IORING_OP_FSYNC;
  int fd;
  bool datasync;
  void prep(io_uring_sqe& s) const noexcept {
    io_uring_prep_fsync(&s, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
  }
  int32_t perform() const noexcept { return detail::kernel_ret(datasync ? ::fdatasync(fd) : ::fsync(fd)); }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

struct fallocate {
  static constexpr uint8_t opcode = IORING_OP_FALLOCATE;
  int fd;
  int mode;
  uint64_t offset;
  uint64_t len;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_fallocate(&s, fd, mode, offset, len); }
  int32_t perform() const noexcept {
    return detail::kernel_ret(
        ::fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(len)));
  }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

struct openat {
  static constexpr uint8_t opcode = IORING_OP_OPENAT;
  static constexpr bool yields_fd = true;  // a late result must be closed
  int dirfd;
  const char* path;
  int flags;
  mode_t mode;
  void prep(io_uring_sqe& s) const noexcept {
    io_uring_prep_openat(&s, dirfd, path, flags | O_CLOEXEC, mode);
  }
  int32_t perform() const noexcept { return detail::kernel_ret(::openat(dirfd, path, flags | O_CLOEXEC, mode)); }
  static result<unique_fd> complete(int32_t res) noexcept {
    if (res < 0) return fail(errno_code(-res));
    return unique_fd(res);
  }
};

struct close {
  static constexpr uint8_t opcode = IORING_OP_CLOSE;
  int fd;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_close(&s, fd); }
  int32_t perform() const noexcept { return detail::kernel_ret(::close(fd)); }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

struct statx {
  static constexpr uint8_t opcode = IORING_OP_STATX;
  int dirfd;
  const char* path;
  int flags;
  unsigned mask;
  struct ::statx* out;  // caller-owned; must outlive the operation
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_statx(&s, dirfd, path, flags, mask, out); }
  int32_t perform() const noexcept { return detail::kernel_ret(::statx(dirfd, path, flags, mask, out)); }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

struct unlinkat {
  static constexpr uint8_t opcode = IORING_OP_UNLINKAT;
  int dirfd;
  const char* path;
  int flags;  // AT_REMOVEDIR to remove a directory
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_unlinkat(&s, dirfd, path, flags); }
  int32_t perform() const noexcept { return detail::kernel_ret(::unlinkat(dirfd, path, flags)); }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

struct renameat {
  static constexpr uint8_t opcode = IORING_OP_RENAMEAT;
  int olddirfd;
  const char* oldpath;
  int newdirfd;
  const char* newpath;
  unsigned flags;
  void prep(io_uring_sqe& s) const noexcept {
    io_uring_prep_renameat(&s, olddirfd, oldpath, newdirfd, newpath, flags);
  }
  int32_t perform() const noexcept {
    return detail::kernel_ret(::renameat2(olddirfd, oldpath, newdirfd, newpath, flags));
  }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

struct mkdirat {
  static constexpr uint8_t opcode = IORING_OP_MKDIRAT;
  int dirfd;
  const char* path;
  mode_t mode;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_mkdirat(&s, dirfd, path, mode); }
  int32_t perform() const noexcept { return detail::kernel_ret(::mkdirat(dirfd, path, mode)); }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

}  // namespace coil::ops
