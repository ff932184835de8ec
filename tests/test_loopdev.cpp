// O_DIRECT on a real file system the test makes itself: an ext4 image on a
// loop device (mkfs.ext4 + mount -o loop). Both engines round-trip aligned
// data and refuse misaligned requests with the typed error. Skips where
// loop devices or mounting are not permitted (containers, non-root).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "coil/fs/direct_file.hpp"
#include "coil/io/dma_buffer.hpp"
#include "test_util.hpp"

namespace {

using namespace coil;

bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

// A mounted ext4 image; unmounted (and the loop device freed) on destruction.
class loop_mount {
 public:
  explicit loop_mount(const test::temp_dir& dir) : mnt_(dir.file("mnt")) {
    const std::string img = dir.file("fs.img");
    if (::geteuid() != 0) {
      why_ = "needs root to mount a loop device";
      return;
    }
    if (::mkdir(mnt_.c_str(), 0700) != 0 || !sh("truncate -s 64M " + img)) {
      why_ = "cannot make the image";
      return;
    }
    if (!sh("mkfs.ext4 -q -F " + img)) {
      why_ = "mkfs.ext4 failed (e2fsprogs missing?)";
      return;
    }
    if (!sh("mount -o loop " + img + " " + mnt_)) {
      why_ = "mount -o loop not permitted here";
      return;
    }
    mounted_ = true;
  }
  ~loop_mount() {
    if (mounted_ && !sh("umount " + mnt_)) ADD_FAILURE() << "could not unmount " << mnt_;
  }
  bool ok() const { return mounted_; }
  const std::string& why() const { return why_; }
  std::string file(const char* name) const { return mnt_ + "/" + name; }

 private:
  std::string mnt_;
  std::string why_;
  bool mounted_ = false;
};

TEST(LoopDevice, DirectIoOnBothEnginesAndTypedAlignmentErrors) {
  test::temp_dir dir;
  loop_mount m(dir);
  if (!m.ok()) GTEST_SKIP() << m.why();
  for (dio_engine engine : {dio_engine::uring, dio_engine::aio}) {
    const std::string path = m.file(engine == dio_engine::uring ? "uring.dat" : "aio.dat");
    std::string failure;
    test::run([&]() -> task<void> {
      direct_options opts;
      opts.engine = engine;
      auto f = co_await direct_file::open(path.c_str(), O_RDWR | O_CREAT, opts);
      CO_ASSERT_OK(f);
      const dio_alignment a = f->alignment();
      EXPECT_GT(a.offset, 0u);
      EXPECT_EQ(a.offset & (a.offset - 1), 0u) << "alignment must be a power of two";
      auto out = dma_buffer::allocate(64 * 1024);
      auto in = dma_buffer::allocate(64 * 1024);
      CO_ASSERT_OK(out);
      CO_ASSERT_OK(in);
      for (std::size_t i = 0; i < out->span().size(); ++i) out->span()[i] = std::byte(i * 31 + 7);
      auto w = co_await f->write_at(out->span(), 4096);
      CO_ASSERT_OK(w);
      EXPECT_EQ(*w, out->span().size());
      auto s = co_await f->fdatasync();
      EXPECT_TRUE(s) << s.error().message();
      auto r = co_await f->read_at(in->span(), 4096);
      CO_ASSERT_OK(r);
      EXPECT_EQ(*r, in->span().size());
      EXPECT_EQ(std::memcmp(in->span().data(), out->span().data(), in->span().size()), 0);
      // Misaligned buffer address, offset and length: typed error, naming the rule.
      auto bad_addr = co_await f->read_at(in->subspan(1, a.offset), 0);
      auto bad_off = co_await f->read_at(in->subspan(0, a.offset), 1);
      auto bad_len = co_await f->read_at(in->subspan(0, a.offset + 1), 0);
      EXPECT_TRUE(test::fails_with(bad_addr, errc::misaligned));
      EXPECT_TRUE(test::fails_with(bad_off, errc::misaligned));
      EXPECT_TRUE(test::fails_with(bad_len, errc::misaligned));
      if (!bad_off) {
        const std::string msg = f->explain(bad_off.error());
        EXPECT_NE(msg.find(std::to_string(a.offset)), std::string::npos) << msg;
      }
    }());
  }
}

}  // namespace
