#include "coil/fs/direct_file.hpp"

#include <sys/ioctl.h>
#include <sys/mount.h>  // BLKSSZGET
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace coil {

// ---- alignment ----------------------------------------------------------------------

const char* to_string(alignment_source s) noexcept {
  switch (s) {
    case alignment_source::statx: return "statx STATX_DIOALIGN";
    case alignment_source::block_device: return "the device's logical block size";
    case alignment_source::fallback: return "a 4096-byte default";
  }
  return "?";
}

std::string describe(const dio_alignment& a) {
  char buf[200];
  std::snprintf(buf, sizeof buf,
                "O_DIRECT here needs buffer addresses aligned to %u bytes and offsets and lengths in multiples of "
                "%u bytes (from %s)",
                a.memory, a.offset, to_string(a.source));
  return buf;
}

namespace detail {

// glibc 2.36's struct statx predates the DIOALIGN fields; they sit in its
// padding at the kernel's offsets.
constexpr std::size_t statx_dio_mem_align_offset = 0x98;
constexpr std::size_t statx_dio_offset_align_offset = 0x9c;
static_assert(sizeof(struct statx) >= statx_dio_offset_align_offset + 4);
static_assert(offsetof(struct statx, stx_dev_minor) + 4 + 8 == statx_dio_mem_align_offset,
              "stx_mnt_id, then stx_dio_mem_align");
#ifndef STATX_DIOALIGN
#define STATX_DIOALIGN 0x00002000U
#endif

namespace {

uint32_t read_u32_at(const struct statx& st, std::size_t offset) noexcept {
  uint32_t v;
  std::memcpy(&v, reinterpret_cast<const unsigned char*>(&st) + offset, sizeof v);
  return v;
}

// The logical block size of device dev: BLKSSZGET on its node when we can
// open one, else sysfs (a partition has no queue/ of its own: use the disk's).
uint32_t logical_block_size(dev_t dev) noexcept {
  char path[96];
  std::snprintf(path, sizeof path, "/dev/block/%u:%u", major(dev), minor(dev));
  if (int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); fd >= 0) {
    int size = 0;
    const bool ok = ::ioctl(fd, BLKSSZGET, &size) == 0 && size > 0;
    ::close(fd);
    if (ok) return static_cast<uint32_t>(size);
  }
  for (const char* rel : {"queue", "../queue"}) {
    std::snprintf(path, sizeof path, "/sys/dev/block/%u:%u/%s/logical_block_size", major(dev), minor(dev), rel);
    if (FILE* f = std::fopen(path, "re")) {
      unsigned size = 0;
      const bool ok = std::fscanf(f, "%u", &size) == 1 && size > 0;
      std::fclose(f);
      if (ok) return size;
    }
  }
  return 0;
}

}  // namespace

result<dio_alignment> discover_alignment(int fd, bool use_statx) noexcept {
  struct statx st {};
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | (use_statx ? STATX_DIOALIGN : 0), &st) != 0) {
    return fail(errno_code(errno));
  }
  if (use_statx && (st.stx_mask & STATX_DIOALIGN) != 0) {
    const uint32_t mem = read_u32_at(st, statx_dio_mem_align_offset);
    const uint32_t off = read_u32_at(st, statx_dio_offset_align_offset);
    // Zero: the file system says this file cannot do direct I/O.
    if (mem == 0 || off == 0) return fail(std::errc::invalid_argument);
    return dio_alignment{mem, off, alignment_source::statx};
  }
  // Before 6.1 the rule was the device's logical block size, for the buffer
  // address too.
  int size = 0;
  uint32_t lbs = 0;
  if (S_ISBLK(st.stx_mode) && ::ioctl(fd, BLKSSZGET, &size) == 0 && size > 0) {
    lbs = static_cast<uint32_t>(size);
  } else {
    lbs = logical_block_size(makedev(st.stx_dev_major, st.stx_dev_minor));
  }
  if (lbs != 0) return dio_alignment{lbs, lbs, alignment_source::block_device};
  return dio_alignment{4096, 4096, alignment_source::fallback};
}

}  // namespace detail

// ---- direct_file ----------------------------------------------------------------------

std::error_code direct_file::check(const void* buf, std::size_t len, uint64_t offset) const noexcept {
  if (reinterpret_cast<uintptr_t>(buf) % align_.memory != 0 || len % align_.offset != 0 ||
      offset % align_.offset != 0) {
    return errc::misaligned;
  }
  return {};
}

std::error_code direct_file::check(std::span<const iovec> iov, uint64_t offset) const noexcept {
  // The block layer checks every segment: address and length.
  if (offset % align_.offset != 0) return errc::misaligned;
  for (const iovec& v : iov) {
    if (reinterpret_cast<uintptr_t>(v.iov_base) % align_.memory != 0 || v.iov_len % align_.offset != 0) {
      return errc::misaligned;
    }
  }
  return {};
}

std::string direct_file::explain(std::error_code ec) const {
  if (ec == errc::misaligned) return ec.message() + ": " + describe(align_);
  return ec.message();
}

result<direct_file> direct_file::adopt(unique_fd fd, direct_options opts) noexcept {
  if (!fd) return fail(std::errc::bad_file_descriptor);
  const int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl < 0) return fail(errno_code(errno));
  if ((fl & O_DIRECT) == 0 && ::fcntl(fd.get(), F_SETFL, fl | O_DIRECT) != 0) return fail(errno_code(errno));
  auto a = detail::discover_alignment(fd.get(), true);
  if (!a) return fail(a.error());
  direct_file f;
  f.fd_ = std::move(fd);
  f.align_ = *a;
  f.engine_ = opts.engine;
  return f;
}

task<result<direct_file>> direct_file::open(const char* path, int flags, direct_options opts) {
  auto fd = co_await op_awaiter<ops::openat>(ops::openat{AT_FDCWD, path, flags | O_DIRECT, opts.mode});
  if (!fd) co_return fail(fd.error());
  co_return adopt(std::move(*fd), opts);
}

}  // namespace coil
