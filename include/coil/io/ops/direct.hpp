#pragma once
// Operations on O_DIRECT files (fs/direct_file.hpp uses them; usable with a
// driver on its own too). They are coil's file operations plus:
// - write sync levels (RWF_DSYNC/RWF_SYNC in the SQE's rw_flags, the iocb's
//   aio_rw_flags, or pwritev2's flags);
// - poll_events 0: a regular file never reports readiness, so a readiness
//   driver runs them on its workers, blocking;
// - an AIO form: with `aio` set the op runs on the driver's Linux AIO
//   backend (io/aio_driver.hpp), which fills an iocb from prep_iocb.
// Errors: those of the file ops they extend (EIO, ENOSPC, EBADF...), plus
// EINVAL for a request the device cannot take (direct_file checks alignment
// first and says errc::misaligned), EAGAIN when AIO has no kernel resources
// and nothing in flight, and errc::unsupported_op for an fsync the file
// system has no AIO form of.
#include <sys/uio.h>

#include <cerrno>
#include <cstdint>

#include "coil/core/result.hpp"
#include "coil/io/aio_driver.hpp"
#include "coil/io/ops/fs.hpp"

namespace coil::dio_ops {

namespace detail {
inline int rwf(write_sync s, bool nowait) noexcept {
  const int f = s == write_sync::dsync ? RWF_DSYNC : s == write_sync::sync ? RWF_SYNC : 0;
  return nowait ? f | RWF_NOWAIT : f;
}
inline off_t off(uint64_t o) noexcept { return static_cast<off_t>(o); }
}  // namespace detail

struct read : ops::read {
  static constexpr bool device_io = true;
  static constexpr bool inline_read = false;  // O_DIRECT: a RWF_NOWAIT read still waits for the device
  static constexpr uint32_t poll_events = 0;
  bool aio = false;
  void prep_iocb(aio_iocb& cb) const noexcept { aio_prep_read(cb, fd, buf, len, offset); }
  int32_t perform(bool nowait) const noexcept {
    iovec v{buf, len};
    return ops::detail::kernel_ret(::preadv2(fd, &v, 1, detail::off(offset), detail::rwf(write_sync::none, nowait)));
  }
};

struct write : ops::write {
  static constexpr bool device_io = true;
  static constexpr uint32_t poll_events = 0;
  write_sync sync = write_sync::none;
  bool aio = false;
  void prep(io_uring_sqe& s) const noexcept {
    io_uring_prep_write(&s, fd, buf, len, offset);
    s.rw_flags = detail::rwf(sync, false);
  }
  void prep_iocb(aio_iocb& cb) const noexcept { aio_prep_write(cb, fd, buf, len, offset, sync); }
  int32_t perform(bool nowait) const noexcept {
    iovec v{const_cast<void*>(buf), len};
    return ops::detail::kernel_ret(::pwritev2(fd, &v, 1, detail::off(offset), detail::rwf(sync, nowait)));
  }
};

struct readv : ops::readv {
  static constexpr bool device_io = true;
  static constexpr uint32_t poll_events = 0;
  bool aio = false;
  void prep_iocb(aio_iocb& cb) const noexcept { aio_prep_readv(cb, fd, iov, iovcnt, offset); }
  int32_t perform(bool nowait) const noexcept {
    return ops::detail::kernel_ret(::preadv2(fd, iov, static_cast<int>(iovcnt), detail::off(offset),
                                             detail::rwf(write_sync::none, nowait)));
  }
};

struct writev : ops::writev {
  static constexpr bool device_io = true;
  static constexpr uint32_t poll_events = 0;
  write_sync sync = write_sync::none;
  bool aio = false;
  void prep(io_uring_sqe& s) const noexcept {
    io_uring_prep_writev(&s, fd, iov, iovcnt, offset);
    s.rw_flags = detail::rwf(sync, false);
  }
  void prep_iocb(aio_iocb& cb) const noexcept { aio_prep_writev(cb, fd, iov, iovcnt, offset, sync); }
  int32_t perform(bool nowait) const noexcept {
    return ops::detail::kernel_ret(
        ::pwritev2(fd, iov, static_cast<int>(iovcnt), detail::off(offset), detail::rwf(sync, nowait)));
  }
};

struct fsync : ops::fsync {
  static constexpr bool device_io = true;
  bool aio = false;
  void prep_iocb(aio_iocb& cb) const noexcept { aio_prep_fsync(cb, fd, datasync); }
  // EINVAL: the file (its file system) has no fsync for this engine (AIO
  // fsync needs the file system's support; pipes have none): say so.
  static result<void> complete(int32_t res) noexcept {
    if (res == -EINVAL) return fail(errc::unsupported_op);
    return ops::detail::to_void(res);
  }
};

}  // namespace coil::dio_ops
