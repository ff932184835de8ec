#pragma once
// direct_file: a file opened with O_DIRECT, its alignment rules discovered at
// open, and positional I/O on io_uring or Linux AIO (chosen in options).
//
// Every request is checked before it is submitted: a buffer address, file
// offset or length that breaks the file's alignment fails with
// errc::misaligned instead of the kernel's bare EINVAL. alignment() says what
// is required and where that came from; explain() turns an error into a
// message naming the numbers.
//
// Buffers must stay valid until the operation is awaited to completion; a
// dma_buffer (coil/io/dma_buffer.hpp) is aligned for any file.
#include <fcntl.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "coil/core/result.hpp"
#include "coil/core/unique_fd.hpp"
#include "coil/io/aio_driver.hpp"
#include "coil/io/ops.hpp"
#include "coil/io/ops/direct.hpp"
#include "coil/rt/op.hpp"
#include "coil/rt/task.hpp"

namespace coil {

// Which kernel interface runs a direct_file's requests.
enum class dio_engine : uint8_t {
  uring,  // the runtime's driver (io_uring, or epoll's workers), like coil::file
  aio,    // the driver's Linux AIO backend (runtime_options::aio)
};

// Where the alignment numbers came from.
enum class alignment_source : uint8_t {
  statx,         // statx STATX_DIOALIGN (Linux 6.1+, where the file system reports it)
  block_device,  // the backing device's logical block size (BLKSSZGET or sysfs)
  fallback,      // neither was available: 4096, which every device accepts
};
const char* to_string(alignment_source s) noexcept;

struct dio_alignment {
  uint32_t memory = 4096;  // buffer addresses must be multiples of this
  uint32_t offset = 4096;  // file offsets and lengths must be multiples of this
  alignment_source source = alignment_source::fallback;
};

namespace detail {
// fd's alignment: statx STATX_DIOALIGN first (unless use_statx is false, for
// tests of the older path), else the device's logical block size, else 4096.
result<dio_alignment> discover_alignment(int fd, bool use_statx) noexcept;
}  // namespace detail

// "O_DIRECT here needs buffer addresses aligned to 512 bytes and offsets and
// lengths in multiples of 4096 bytes (from statx STATX_DIOALIGN)".
std::string describe(const dio_alignment& a);

// How direct_file::open sets a file up.
struct direct_options {
  dio_engine engine = dio_engine::uring;
  mode_t mode = 0644;  // for O_CREAT
};

// An operation on a direct_file: fails at once when misaligned, otherwise
// awaits the op like any other (op_awaiter); the op's aio flag picks the
// engine. Lives in the awaiting frame; not movable, so it is awaited where
// it is created.
template <class Op>
class [[nodiscard]] dio_awaiter {
 public:
  using result_type = decltype(Op::complete(0));

  dio_awaiter(const Op& op, std::error_code early) noexcept : op_(op), early_(early) {}
  dio_awaiter(const dio_awaiter&) = delete;
  dio_awaiter& operator=(const dio_awaiter&) = delete;

  bool await_ready() const noexcept { return static_cast<bool>(early_); }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    return op_.await_suspend(h);
  }
  result_type await_resume() noexcept {
    if (early_) return result_type(fail(early_));
    return op_.await_resume();
  }

 private:
  op_awaiter<Op> op_;
  std::error_code early_;
};

// A file opened with O_DIRECT, its alignment known and every request checked
// against it (see the file description). Move-only.
class direct_file {
 public:
  direct_file() noexcept = default;
  direct_file(direct_file&&) noexcept = default;
  direct_file& operator=(direct_file&&) noexcept = default;

  // Opens path (relative to the working directory) with flags | O_DIRECT and
  // discovers its alignment. path must stay valid until the task finishes.
  // EINVAL means the file system does not do O_DIRECT (tmpfs before 6.6).
  static task<result<direct_file>> open(const char* path, int flags, direct_options opts = {});
  // Takes fd over: sets O_DIRECT on it if missing, discovers the alignment.
  // Blocking (a few system calls); for descriptors opened elsewhere.
  static result<direct_file> adopt(unique_fd fd, direct_options opts = {}) noexcept;

  int fd() const noexcept { return fd_.get(); }
  bool is_open() const noexcept { return fd_.valid(); }
  dio_engine engine() const noexcept { return engine_; }
  const dio_alignment& alignment() const noexcept { return align_; }
  unique_fd release() noexcept { return unique_fd(fd_.release()); }

  // errc::misaligned when buf/len/offset break alignment(), else no error.
  std::error_code check(const void* buf, std::size_t len, uint64_t offset) const noexcept;
  std::error_code check(std::span<const iovec> iov, uint64_t offset) const noexcept;
  // ec's message; for errc::misaligned also what this file requires.
  std::string explain(std::error_code ec) const;

  // One transfer; may be short at end of file. Lengths are capped just below
  // 2 GiB (rounded down to the alignment); loop for more.
  dio_awaiter<dio_ops::read> read_at(std::span<std::byte> buf, uint64_t offset) const noexcept {
    const uint32_t len = clamp(buf.size());
    return {dio_ops::read{{fd(), buf.data(), len, offset}, aio()}, check(buf.data(), buf.size(), offset)};
  }
  dio_awaiter<dio_ops::write> write_at(std::span<const std::byte> buf, uint64_t offset,
                                       write_sync sync = write_sync::none) const noexcept {
    const uint32_t len = clamp(buf.size());
    return {dio_ops::write{{fd(), buf.data(), len, offset}, sync, aio()}, check(buf.data(), buf.size(), offset)};
  }
  // iov (the array itself, too) must stay valid until awaited.
  dio_awaiter<dio_ops::readv> readv_at(std::span<const iovec> iov, uint64_t offset) const noexcept {
    return {dio_ops::readv{{fd(), iov.data(), static_cast<uint32_t>(iov.size()), offset}, aio()}, check(iov, offset)};
  }
  dio_awaiter<dio_ops::writev> writev_at(std::span<const iovec> iov, uint64_t offset,
                                         write_sync sync = write_sync::none) const noexcept {
    return {dio_ops::writev{{fd(), iov.data(), static_cast<uint32_t>(iov.size()), offset}, sync, aio()},
            check(iov, offset)};
  }
  dio_awaiter<dio_ops::fsync> fsync() const noexcept { return {dio_ops::fsync{{fd(), false}, aio()}, {}}; }
  dio_awaiter<dio_ops::fsync> fdatasync() const noexcept { return {dio_ops::fsync{{fd(), true}, aio()}, {}}; }

 private:
  bool aio() const noexcept { return engine_ == dio_engine::aio; }
  uint32_t clamp(std::size_t n) const noexcept {
    constexpr std::size_t cap = 0x7ffff000u;
    return static_cast<uint32_t>(n <= cap ? n : cap - cap % align_.offset);
  }

  unique_fd fd_;
  dio_alignment align_;
  dio_engine engine_ = dio_engine::uring;
};

}  // namespace coil
