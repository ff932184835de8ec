#pragma once
// File and path operations. Regular files never report readiness, so a
// fallback driver runs these on its worker pool; read/write first try
// RWF_NOWAIT (a page-cache hit completes inline) and work on pipes and
// character devices by readiness.
#include <fcntl.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "coil/core/unique_fd.hpp"
#include "coil/io/ops/common.hpp"

namespace coil::ops {

namespace detail {
inline off_t off(uint64_t offset) noexcept {
  return offset == current_position ? -1 : static_cast<off_t>(offset);
}
// p{read,write}v2 at an offset on a pipe or socket fails with ESPIPE where
// io_uring uses the stream position; retry the same way so drivers agree.
// Files without RWF_NOWAIT support (EOPNOTSUPP: ttys, some file systems)
// are polled instead: not ready means -EAGAIN, ready means a plain call.
template <class Fn>
inline int32_t rw_at(int fd, uint64_t offset, bool nowait, short events, Fn&& fn) noexcept {
  long r = fn(off(offset), nowait ? RWF_NOWAIT : 0);
  if (r < 0 && errno == ESPIPE && offset != current_position) {
    offset = current_position;
    r = fn(-1, nowait ? RWF_NOWAIT : 0);
  }
  if (r < 0 && nowait && errno == EOPNOTSUPP) {
    pollfd p{fd, events, 0};
    if (::poll(&p, 1, 0) == 0) return -EAGAIN;
    r = fn(off(offset), 0);
  }
  return kernel_ret(r);
}
}  // namespace detail

// Errors: EBADF, EINVAL (misaligned O_DIRECT, unreadable fd), EISDIR, EIO, EFAULT.
struct read {
  static constexpr uint8_t opcode = IORING_OP_READ;
  static constexpr uint32_t poll_events = EPOLLIN;
  static constexpr bool inline_read = true;
  int fd;
  void* buf;
  uint32_t len;
  uint64_t offset;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_read(&s, fd, buf, len, offset); }
  int32_t perform(bool nowait) const noexcept {
    iovec v{buf, len};
    return detail::rw_at(fd, offset, nowait, POLLIN, [&](off_t o, int f) {
      // Without flags, pread/read: no iovec for the kernel to import.
      if (f == 0) return o < 0 ? ::read(fd, buf, len) : ::pread(fd, buf, len, o);
      return ::preadv2(fd, &v, 1, o, f);
    });
  }
  bool at_stream_position() const noexcept { return offset == current_position; }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

// Errors: EBADF, EINVAL, EFBIG, ENOSPC, EDQUOT, EIO, EPIPE (a pipe with no reader).
struct write {
  static constexpr uint8_t opcode = IORING_OP_WRITE;
  static constexpr uint32_t poll_events = EPOLLOUT;
  int fd;
  const void* buf;
  uint32_t len;
  uint64_t offset;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_write(&s, fd, buf, len, offset); }
  int32_t perform(bool nowait) const noexcept {
    iovec v{const_cast<void*>(buf), len};
    return detail::rw_at(fd, offset, nowait, POLLOUT, [&](off_t o, int f) {
      if (f == 0) return o < 0 ? ::write(fd, buf, len) : ::pwrite(fd, buf, len, o);
      return ::pwritev2(fd, &v, 1, o, f);
    });
  }
  bool at_stream_position() const noexcept { return offset == current_position; }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

// Errors: as read, plus EINVAL for a bad iovec count.
struct readv {
  static constexpr uint8_t opcode = IORING_OP_READV;
  static constexpr uint32_t poll_events = EPOLLIN;
  int fd;
  const iovec* iov;
  uint32_t iovcnt;
  uint64_t offset;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_readv(&s, fd, iov, iovcnt, offset); }
  int32_t perform(bool nowait) const noexcept {
    return detail::rw_at(fd, offset, nowait, POLLIN,
                         [&](off_t o, int f) { return ::preadv2(fd, iov, static_cast<int>(iovcnt), o, f); });
  }
  bool at_stream_position() const noexcept { return offset == current_position; }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

// Errors: as write, plus EINVAL for a bad iovec count.
struct writev {
  static constexpr uint8_t opcode = IORING_OP_WRITEV;
  static constexpr uint32_t poll_events = EPOLLOUT;
  int fd;
  const iovec* iov;
  uint32_t iovcnt;
  uint64_t offset;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_writev(&s, fd, iov, iovcnt, offset); }
  int32_t perform(bool nowait) const noexcept {
    return detail::rw_at(fd, offset, nowait, POLLOUT,
                         [&](off_t o, int f) { return ::pwritev2(fd, iov, static_cast<int>(iovcnt), o, f); });
  }
  bool at_stream_position() const noexcept { return offset == current_position; }
  static result<size_t> complete(int32_t res) noexcept { return detail::to_size(res); }
};

// Reads into / writes from a registered buffer (driver().register_buffer):
// no per-op page pinning. buf must lie inside buffer buf_index.
struct read_fixed : read {
  static constexpr uint8_t opcode = IORING_OP_READ_FIXED;
  static constexpr bool inline_read = false;  // the registered buffer is the point
  int buf_index;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_read_fixed(&s, fd, buf, len, offset, buf_index); }
};
struct write_fixed : write {
  static constexpr uint8_t opcode = IORING_OP_WRITE_FIXED;
  int buf_index;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_write_fixed(&s, fd, buf, len, offset, buf_index); }
};

// Errors: EBADF, EINVAL (nothing to sync: pipe, socket), EIO, ENOSPC, EDQUOT.
struct fsync {
  static constexpr uint8_t opcode = IORING_OP_FSYNC;
  static constexpr uint32_t poll_events = 0;
  int fd;
  bool datasync;
  void prep(io_uring_sqe& s) const noexcept {
    io_uring_prep_fsync(&s, fd, datasync ? IORING_FSYNC_DATASYNC : 0);
  }
  int32_t perform(bool) const noexcept { return detail::kernel_ret(datasync ? ::fdatasync(fd) : ::fsync(fd)); }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

// Errors: EBADF, EINVAL, EFBIG, ENOSPC, EOPNOTSUPP (file system or mode),
// ENODEV (not a regular file), ESPIPE (pipe).
struct fallocate {
  static constexpr uint8_t opcode = IORING_OP_FALLOCATE;
  static constexpr uint32_t poll_events = 0;
  int fd;
  int mode;
  uint64_t offset;
  uint64_t len;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_fallocate(&s, fd, mode, offset, len); }
  int32_t perform(bool) const noexcept {
    return detail::kernel_ret(
        ::fallocate(fd, mode, static_cast<off_t>(offset), static_cast<off_t>(len)));
  }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

// Errors: ENOENT, EACCES, EEXIST (O_CREAT|O_EXCL), ENOTDIR, EISDIR, ELOOP,
// ENAMETOOLONG, EMFILE/ENFILE, EROFS, EINVAL (O_DIRECT unsupported).
struct openat {
  static constexpr uint8_t opcode = IORING_OP_OPENAT;
  static constexpr uint32_t poll_events = 0;
  static constexpr bool yields_fd = true;  // a late result must be closed
  int dirfd;
  const char* path;
  int flags;
  mode_t mode;
  void prep(io_uring_sqe& s) const noexcept {
    io_uring_prep_openat(&s, dirfd, path, flags | O_CLOEXEC, mode);
  }
  int32_t perform(bool) const noexcept { return detail::kernel_ret(::openat(dirfd, path, flags | O_CLOEXEC, mode)); }
  static result<unique_fd> complete(int32_t res) noexcept {
    if (res < 0) return fail(kernel_error(res));
    return unique_fd(res);
  }
};

// openat2(2): openat with resolve rules (RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS,
// RESOLVE_NO_MAGICLINKS...), so a path from outside can be kept beneath
// dirfd. The open_how travels inside the op, which outlives the submission.
// Errors: as openat, plus EXDEV (the path would leave dirfd under
// RESOLVE_BENEATH), ELOOP (a symlink under RESOLVE_NO_SYMLINKS), EAGAIN
// (RESOLVE_CACHED missed), E2BIG/EINVAL (bad open_how).
struct openat2 {
  static constexpr uint8_t opcode = IORING_OP_OPENAT2;
  static constexpr uint32_t poll_events = 0;
  static constexpr bool yields_fd = true;  // a late result must be closed
  int dirfd;
  const char* path;
  open_how how;
  void prep(io_uring_sqe& s) const noexcept {
    io_uring_prep_openat2(&s, dirfd, path, const_cast<open_how*>(&how));
  }
  int32_t perform(bool) const noexcept {
    return detail::kernel_ret(::syscall(SYS_openat2, dirfd, path, &how, sizeof how));
  }
  static result<unique_fd> complete(int32_t res) noexcept {
    if (res < 0) return fail(kernel_error(res));
    return unique_fd(res);
  }
};

// Errors: EBADF, EIO (the descriptor is released either way).
struct close {
  static constexpr uint8_t opcode = IORING_OP_CLOSE;
  static constexpr uint32_t poll_events = 0;
  static constexpr bool consumes_fd = true;  // the fd is released even if the op never runs
  static constexpr bool never_blocks = true;
  int fd;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_close(&s, fd); }
  int32_t perform(bool) const noexcept { return detail::kernel_ret(::close(fd)); }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

// Errors: ENOENT, EACCES, EBADF, ENOTDIR, ELOOP, ENAMETOOLONG, ENOMEM.
struct statx {
  static constexpr uint8_t opcode = IORING_OP_STATX;
  static constexpr uint32_t poll_events = 0;
  int dirfd;
  const char* path;
  int flags;
  unsigned mask;
  struct ::statx* out;  // caller-owned; must outlive the operation
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_statx(&s, dirfd, path, flags, mask, out); }
  int32_t perform(bool) const noexcept { return detail::kernel_ret(::statx(dirfd, path, flags, mask, out)); }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

// Errors: ENOENT, EACCES/EPERM, EISDIR (a directory without AT_REMOVEDIR),
// ENOTEMPTY, ENOTDIR, EBUSY, EROFS.
struct unlinkat {
  static constexpr uint8_t opcode = IORING_OP_UNLINKAT;
  static constexpr uint32_t poll_events = 0;
  int dirfd;
  const char* path;
  int flags;  // AT_REMOVEDIR to remove a directory
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_unlinkat(&s, dirfd, path, flags); }
  int32_t perform(bool) const noexcept { return detail::kernel_ret(::unlinkat(dirfd, path, flags)); }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

// Errors: ENOENT, EACCES/EPERM, EEXIST (RENAME_NOREPLACE), EXDEV, ENOTEMPTY,
// EISDIR, ENOTDIR, EINVAL, EBUSY, EROFS.
struct renameat {
  static constexpr uint8_t opcode = IORING_OP_RENAMEAT;
  static constexpr uint32_t poll_events = 0;
  int olddirfd;
  const char* oldpath;
  int newdirfd;
  const char* newpath;
  unsigned flags;
  void prep(io_uring_sqe& s) const noexcept {
    io_uring_prep_renameat(&s, olddirfd, oldpath, newdirfd, newpath, flags);
  }
  int32_t perform(bool) const noexcept {
    return detail::kernel_ret(::renameat2(olddirfd, oldpath, newdirfd, newpath, flags));
  }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

// Errors: EEXIST, ENOENT, EACCES, ENOTDIR, ENOSPC, EROFS.
struct mkdirat {
  static constexpr uint8_t opcode = IORING_OP_MKDIRAT;
  static constexpr uint32_t poll_events = 0;
  int dirfd;
  const char* path;
  mode_t mode;
  void prep(io_uring_sqe& s) const noexcept { io_uring_prep_mkdirat(&s, dirfd, path, mode); }
  int32_t perform(bool) const noexcept { return detail::kernel_ret(::mkdirat(dirfd, path, mode)); }
  static result<void> complete(int32_t res) noexcept { return detail::to_void(res); }
};

}  // namespace coil::ops
