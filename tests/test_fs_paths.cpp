// Path operations (mkdir, rmdir, unlink, rename, stat) on a real io_uring,
// checked against the file system with plain POSIX calls.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdio>  // RENAME_NOREPLACE, RENAME_EXCHANGE
#include <fstream>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace coil {
namespace {

using test::fails_with;

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}
bool is_dir(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}
std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
mode_t current_umask() {
  const mode_t m = ::umask(022);
  ::umask(m);
  return m;
}

TEST(FsMkdir, CreatesWithModeAndRefusesExisting) {
  test::temp_dir dir;
  const std::string a = dir.file("a"), b = dir.file("b"), nested = dir.file("no/such/parent");
  const std::string under_file = dir.file("plain/sub");
  write_text(dir.file("plain"), "x");
  test::run([&]() -> task<void> {
    CO_EXPECT_OK(co_await mkdir(a.c_str()));
    CO_EXPECT_OK(co_await mkdir(b.c_str(), 0700));
    CO_EXPECT_FAIL(co_await mkdir(a.c_str()), std::errc::file_exists);
    CO_EXPECT_FAIL(co_await mkdir(dir.file("plain").c_str()), std::errc::file_exists);
    CO_EXPECT_FAIL(co_await mkdir(nested.c_str()), std::errc::no_such_file_or_directory);
    CO_EXPECT_FAIL(co_await mkdir(under_file.c_str()), std::errc::not_a_directory);
  }());
  struct stat st {};
  ASSERT_EQ(::stat(a.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0755 & ~current_umask());
  ASSERT_EQ(::stat(b.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700 & ~current_umask());
  EXPECT_FALSE(exists(dir.file("no")));
}

TEST(FsRmdir, RemovesOnlyEmptyDirectories) {
  test::temp_dir dir;
  const std::string empty = dir.file("empty"), full = dir.file("full"), plain = dir.file("plain");
  ASSERT_EQ(::mkdir(empty.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(full.c_str(), 0755), 0);
  write_text(full + "/inside", "x");
  write_text(plain, "x");
  const std::string missing = dir.file("missing");
  test::run([&]() -> task<void> {
    CO_EXPECT_OK(co_await rmdir(empty.c_str()));
    CO_EXPECT_FAIL(co_await rmdir(empty.c_str()), std::errc::no_such_file_or_directory);
    CO_EXPECT_FAIL(co_await rmdir(missing.c_str()), std::errc::no_such_file_or_directory);
    CO_EXPECT_FAIL(co_await rmdir(full.c_str()), std::errc::directory_not_empty);
    CO_EXPECT_FAIL(co_await rmdir(plain.c_str()), std::errc::not_a_directory);
  }());
  EXPECT_FALSE(exists(empty));
  EXPECT_TRUE(is_dir(full));
  EXPECT_EQ(read_text(full + "/inside"), "x");
  EXPECT_EQ(read_text(plain), "x");
}

TEST(FsUnlink, RemovesFilesNotDirectories) {
  test::temp_dir dir;
  const std::string f = dir.file("f"), d = dir.file("d"), missing = dir.file("missing");
  write_text(f, "payload");
  ASSERT_EQ(::mkdir(d.c_str(), 0755), 0);
  test::run([&]() -> task<void> {
    // An open file stays readable through its fd after its name is gone.
    auto open = co_await file::open(f.c_str());
    if (!open) {
      ADD_FAILURE() << open.error().message();
      co_return;
    }
    CO_EXPECT_OK(co_await unlink(f.c_str()));
    EXPECT_FALSE(exists(f));
    std::string buf(16, '\0');
    auto n = co_await open->read_at(std::as_writable_bytes(std::span(buf)), 0);
    EXPECT_TRUE(n && buf.substr(0, *n) == "payload");

    CO_EXPECT_FAIL(co_await unlink(f.c_str()), std::errc::no_such_file_or_directory);
    CO_EXPECT_FAIL(co_await unlink(missing.c_str()), std::errc::no_such_file_or_directory);
    CO_EXPECT_FAIL(co_await unlink(d.c_str()), std::errc::is_a_directory);
  }());
  EXPECT_TRUE(is_dir(d));
}

TEST(FsRename, MovesReplacesAndRespectsFlags) {
  test::temp_dir dir;
  const std::string a = dir.file("a"), b = dir.file("b"), c = dir.file("c"), e = dir.file("e");
  const std::string missing = dir.file("missing"), sub = dir.file("sub"), into = dir.file("sub/moved");
  write_text(a, "AAA");
  write_text(c, "CCC");
  write_text(e, "EEE");
  ASSERT_EQ(::mkdir(sub.c_str(), 0755), 0);
  test::run([&]() -> task<void> {
    CO_EXPECT_OK(co_await rename(a.c_str(), b.c_str()));  // a -> b (new name)
    EXPECT_FALSE(exists(a));
    EXPECT_EQ(read_text(b), "AAA");

    // NOREPLACE onto an existing name: EEXIST, both untouched.
    CO_EXPECT_FAIL(co_await rename(b.c_str(), c.c_str(), RENAME_NOREPLACE), std::errc::file_exists);
    EXPECT_EQ(read_text(b), "AAA");
    EXPECT_EQ(read_text(c), "CCC");

    // EXCHANGE swaps atomically.
    CO_EXPECT_OK(co_await rename(b.c_str(), c.c_str(), RENAME_EXCHANGE));
    EXPECT_EQ(read_text(b), "CCC");
    EXPECT_EQ(read_text(c), "AAA");

    // Plain rename replaces the target.
    CO_EXPECT_OK(co_await rename(e.c_str(), c.c_str()));
    EXPECT_FALSE(exists(e));
    EXPECT_EQ(read_text(c), "EEE");

    // NOREPLACE onto a free name works; into a subdirectory too.
    CO_EXPECT_OK(co_await rename(c.c_str(), into.c_str(), RENAME_NOREPLACE));
    EXPECT_EQ(read_text(into), "EEE");

    CO_EXPECT_FAIL(co_await rename(missing.c_str(), a.c_str()), std::errc::no_such_file_or_directory);
    CO_EXPECT_FAIL(co_await rename(missing.c_str(), a.c_str(), RENAME_EXCHANGE),
                   std::errc::no_such_file_or_directory);
    // EXCHANGE needs both names to exist.
    CO_EXPECT_FAIL(co_await rename(b.c_str(), a.c_str(), RENAME_EXCHANGE), std::errc::no_such_file_or_directory);
    // A file cannot replace a directory, nor move under a file.
    CO_EXPECT_FAIL(co_await rename(b.c_str(), sub.c_str()), std::errc::is_a_directory);
    CO_EXPECT_FAIL(co_await rename(b.c_str(), (b + "/x").c_str()), std::errc::not_a_directory);
    // NOREPLACE and EXCHANGE together are contradictory.
    CO_EXPECT_FAIL(co_await rename(b.c_str(), into.c_str(), RENAME_NOREPLACE | RENAME_EXCHANGE),
                   std::errc::invalid_argument);
  }());
  EXPECT_EQ(read_text(b), "CCC");
  EXPECT_EQ(read_text(into), "EEE");
}

TEST(FsStat, ByPath) {
  test::temp_dir dir;
  const std::string f = dir.file("f"), d = dir.file("d"), link = dir.file("link");
  const std::string missing = dir.file("missing"), through_file = dir.file("f/x");
  write_text(f, std::string(4321, 'z'));
  ASSERT_EQ(::chmod(f.c_str(), 0604), 0);
  ASSERT_EQ(::mkdir(d.c_str(), 0711), 0);
  ASSERT_EQ(::symlink("f", link.c_str()), 0);
  const std::string too_long(PATH_MAX + 1, 'n');
  test::run([&]() -> task<void> {
    struct ::statx st {};
    CO_EXPECT_OK(co_await stat(f.c_str(), &st));
    EXPECT_TRUE(S_ISREG(st.stx_mode));
    EXPECT_EQ(st.stx_size, 4321u);
    EXPECT_EQ(st.stx_mode & 07777, 0604);
    struct stat ref {};
    EXPECT_EQ(::stat(f.c_str(), &ref), 0);
    EXPECT_EQ(st.stx_ino, ref.st_ino);
    EXPECT_EQ(st.stx_nlink, 1u);

    st = {};
    CO_EXPECT_OK(co_await stat(d.c_str(), &st));
    EXPECT_TRUE(S_ISDIR(st.stx_mode));
    EXPECT_EQ(st.stx_mode & 07777, 0711 & ~current_umask());

    // Symlinks are followed (flags 0).
    st = {};
    CO_EXPECT_OK(co_await stat(link.c_str(), &st));
    EXPECT_TRUE(S_ISREG(st.stx_mode));
    EXPECT_EQ(st.stx_size, 4321u);

    // A narrower mask still fills what was asked for.
    st = {};
    CO_EXPECT_OK(co_await stat(f.c_str(), &st, STATX_SIZE));
    EXPECT_TRUE(st.stx_mask & STATX_SIZE);
    EXPECT_EQ(st.stx_size, 4321u);

    CO_EXPECT_FAIL(co_await stat(missing.c_str(), &st), std::errc::no_such_file_or_directory);
    CO_EXPECT_FAIL(co_await stat("", &st), std::errc::no_such_file_or_directory);
    CO_EXPECT_FAIL(co_await stat(through_file.c_str(), &st), std::errc::not_a_directory);
    CO_EXPECT_FAIL(co_await stat(too_long.c_str(), &st), std::errc::filename_too_long);
  }());
}

TEST(FsPaths, RelativeToWorkingDirectory) {
  // Paths resolve against the process's working directory (AT_FDCWD), also
  // when the kernel runs the operation on one of its worker threads.
  test::temp_dir dir;
  char old_cwd[PATH_MAX];
  ASSERT_NE(::getcwd(old_cwd, sizeof old_cwd), nullptr);
  ASSERT_EQ(::chdir(dir.path().c_str()), 0);
  test::run([&]() -> task<void> {
    CO_EXPECT_OK(co_await mkdir("rel"));
    auto f = co_await file::create("rel/a");
    EXPECT_TRUE(f) << f.error().message();
    if (f) {
      auto w = co_await f->write_at(std::as_bytes(std::span("relative", 8)), 0);
      EXPECT_TRUE(w && *w == 8);
    }
    CO_EXPECT_OK(co_await rename("rel/a", "rel/b"));
    struct ::statx st {};
    CO_EXPECT_OK(co_await stat("rel/b", &st));
    EXPECT_EQ(st.stx_size, 8u);
    CO_EXPECT_OK(co_await unlink("rel/b"));
    CO_EXPECT_OK(co_await rmdir("rel"));
    CO_EXPECT_FAIL(co_await stat("rel", &st), std::errc::no_such_file_or_directory);
  }());
  ASSERT_EQ(::chdir(old_cwd), 0);
  EXPECT_FALSE(exists(dir.file("rel")));
}

TEST(FsOpenAt, ResolveRulesKeepPathsBeneathTheDirectory) {
  // openat2 through the driver: the resolve flags reach the kernel on both
  // drivers, and open_how's mode applies with O_CREAT.
  test::temp_dir dir;
  ASSERT_EQ(::mkdir(dir.file("root").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(dir.file("root/sub").c_str(), 0755), 0);
  write_text(dir.file("root/sub/a.txt"), "inside");
  write_text(dir.file("outside.txt"), "secret");
  ASSERT_EQ(::symlink("../outside.txt", dir.file("root/out").c_str()), 0);
  ASSERT_EQ(::symlink("sub/a.txt", dir.file("root/in").c_str()), 0);
  const int root = ::open(dir.file("root").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  ASSERT_GE(root, 0);
  const std::string absolute = dir.file("outside.txt");
  constexpr uint64_t beneath = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  test::run([&]() -> task<void> {
    auto f = co_await file::open_at(root, "sub/a.txt", O_RDONLY, beneath);
    EXPECT_TRUE(f) << f.error().message();
    if (f) {
      std::string text(16, '\0');
      auto n = co_await f->read_at(std::as_writable_bytes(std::span(text.data(), text.size())), 0);
      EXPECT_TRUE(n && text.substr(0, *n) == "inside");
      EXPECT_GE(::fcntl(f->fd(), F_GETFD) & FD_CLOEXEC, 1);
    }
    CO_EXPECT_FAIL(co_await file::open_at(root, "../outside.txt", O_RDONLY, beneath), std::errc::cross_device_link);
    CO_EXPECT_FAIL(co_await file::open_at(root, absolute.c_str(), O_RDONLY, beneath), std::errc::cross_device_link);
    CO_EXPECT_FAIL(co_await file::open_at(root, "out", O_RDONLY, beneath), std::errc::cross_device_link);
    CO_EXPECT_FAIL(co_await file::open_at(root, "in", O_RDONLY, beneath | RESOLVE_NO_SYMLINKS),
                   std::errc::too_many_symbolic_link_levels);
    CO_EXPECT_FAIL(co_await file::open_at(root, "missing", O_RDONLY, beneath), std::errc::no_such_file_or_directory);
    CO_EXPECT_FAIL(co_await file::open_at(root, "sub/a.txt/x", O_RDONLY, beneath), std::errc::not_a_directory);
    auto in = co_await file::open_at(root, "in", O_RDONLY, beneath);  // a symlink that stays inside
    EXPECT_TRUE(in);
    auto out = co_await file::open_at(root, "out", O_RDONLY, RESOLVE_NO_MAGICLINKS);  // no BENEATH: followed
    EXPECT_TRUE(out);
    auto made = co_await file::open_at(root, "sub/new", O_WRONLY | O_CREAT | O_EXCL, beneath, 0600);
    EXPECT_TRUE(made) << made.error().message();
    CO_EXPECT_FAIL(co_await file::open_at(root, "sub/new", O_WRONLY | O_CREAT | O_EXCL, beneath, 0600),
                   std::errc::file_exists);
  }());
  ::close(root);
  struct stat st {};
  ASSERT_EQ(::stat(dir.file("root/sub/new").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600 & ~current_umask());
}

task<void> make_then_remove(std::string path, int& ok) {
  auto f = co_await file::create(path.c_str());
  if (!f) co_return;
  auto w = co_await f->write_at(std::as_bytes(std::span(path.data(), path.size())), 0);
  auto c = co_await f->close();
  auto renamed = path + ".renamed";
  auto r = co_await rename(path.c_str(), renamed.c_str(), RENAME_NOREPLACE);
  struct ::statx st {};
  auto s = co_await stat(renamed.c_str(), &st);
  const bool sized = s && st.stx_size == path.size();
  auto u = co_await unlink(renamed.c_str());
  if (w && c && r && sized && u) ++ok;
}

TEST(FsConcurrent, ManyPathOperationsInFlight) {
  test::temp_dir dir;
  const std::string sub = dir.file("sub");
  constexpr int count = 200;
  int ok = 0;
  test::run([&]() -> task<void> {
    CO_EXPECT_OK(co_await mkdir(sub.c_str()));
    std::vector<join_handle<void>> hs;
    for (int i = 0; i < count; ++i) {
      hs.push_back(runtime::current()->spawn(make_then_remove(sub + "/" + std::to_string(i), ok)));
    }
    for (auto& h : hs) co_await h;
    CO_EXPECT_OK(co_await rmdir(sub.c_str()));  // only succeeds if every file is gone
  }());
  EXPECT_EQ(ok, count);
  EXPECT_FALSE(exists(sub));
}

}  // namespace
}  // namespace coil
