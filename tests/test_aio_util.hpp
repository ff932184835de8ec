#pragma once
// Helpers for the AIO and direct_file tests: a directory on a file system
// that really does O_DIRECT (tmpfs either refuses it or silently buffers),
// and deterministic data.
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "coil/io/aio_driver.hpp"
#include "test_util.hpp"

namespace coil::aio_test {

// A temp_dir on the first candidate file system where an O_DIRECT write of
// one aligned block works and which is not tmpfs. Empty path: none found
// (tests skip with why()).
class direct_dir {
 public:
  direct_dir() {
    std::vector<std::string> bases;
    if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') bases.emplace_back(t);
    bases.emplace_back("/tmp");
    bases.emplace_back("/var/tmp");
    if (char* cwd = ::getcwd(nullptr, 0)) {
      bases.emplace_back(cwd);  // the build directory when run by ctest
      std::free(cwd);
    }
    for (const std::string& base : bases) {
      std::string tmpl = base + "/coil-dio-XXXXXX";
      if (::mkdtemp(tmpl.data()) == nullptr) continue;
      if (works(tmpl)) {
        path_ = tmpl;
        return;
      }
      why_ += base + ": no O_DIRECT; ";
      ::rmdir(tmpl.c_str());
    }
  }
  ~direct_dir() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  bool ok() const { return !path_.empty(); }
  const std::string& why() const { return why_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  static bool works(const std::string& dir) {
    struct statfs fs {};
    if (::statfs(dir.c_str(), &fs) != 0 || fs.f_type == TMPFS_MAGIC) return false;
    const std::string probe = dir + "/probe";
    const int fd = ::open(probe.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0644);
    if (fd < 0) return false;
    void* p = nullptr;
    bool ok = ::posix_memalign(&p, 4096, 4096) == 0;
    if (ok) {
      std::memset(p, 1, 4096);
      ok = ::pwrite(fd, p, 4096, 0) == 4096;
      std::free(p);
    }
    ::close(fd);
    ::unlink(probe.c_str());
    return ok;
  }
  std::string path_;
  std::string why_;
};

#define COIL_REQUIRE_DIRECT_DIR(d) \
  if (!(d).ok()) GTEST_SKIP() << "no directory on a file system with O_DIRECT: " << (d).why()

// Deterministic bytes with no short period, so a misplaced offset shows.
inline void fill_pattern(std::span<std::byte> out, uint32_t seed) {
  uint32_t x = seed * 0x9E3779B9u + 0x7F4A7C15u;
  for (std::byte& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::byte>(x >> 24);
  }
}
inline std::vector<std::byte> pattern(std::size_t n, uint32_t seed) {
  std::vector<std::byte> v(n);
  fill_pattern(v, seed);
  return v;
}

// Writes data to path with plain syscalls (independent of coil).
inline bool write_file(const std::string& path, std::span<const std::byte> data) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool ok = ::pwrite(fd, data.data(), data.size(), 0) == static_cast<ssize_t>(data.size());
  return ::fsync(fd) == 0 && ::close(fd) == 0 && ok;
}
inline std::vector<std::byte> read_file(const std::string& path) {
  std::vector<std::byte> out;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  std::byte buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  ::close(fd);
  return out;
}

inline bool same(std::span<const std::byte> a, std::span<const std::byte> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size()) == 0;
}

// A raw AIO request for aio_driver on its own: the test fills cb with an
// aio_prep_* function (or by hand: IOCB_CMD_POLL), and the driver copies it
// into its slot at submission. dio_ops with .aio set are the typed form.
struct aio_req : completion {
  aio_iocb cb;
  aio_req() noexcept { ops = &vtable; }
  static void fill(completion& c, aio_iocb& out) noexcept { out = static_cast<aio_req&>(c).cb; }
  static constexpr op_vtable vtable = [] {
    op_vtable v{};
    v.opcode = IORING_OP_READ;
    v.prep_iocb = &fill;
    return v;
  }();
};

}  // namespace coil::aio_test
