// Guide: files.md. Opening, positional and looping I/O, metadata, path
// operations, and O_DIRECT files (skipped where the file system has none).
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

#include <coil/coil.hpp>

#include "example_util.hpp"

namespace {

using example::check;

// doc-begin: basics
coil::task<coil::result<void>> basics(const std::string& dir) {
  const std::string path = dir + "/log";
  auto f = co_await coil::file::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (!f) co_return coil::fail(f.error());

  const char text[] = "positional writes take an offset";
  auto w = co_await f->write_all_at(std::as_bytes(std::span(text)), 0);  // loops over short writes
  if (!w) co_return w;
  auto synced = co_await f->fdatasync();
  if (!synced) co_return synced;

  char back[sizeof text];
  auto r = co_await f->read_exact_at(std::as_writable_bytes(std::span(back)), 0);
  if (!r) co_return r;  // errc::unexpected_eof if the file is shorter

  struct statx st;
  auto s = co_await f->stat(&st);  // st must outlive the await
  if (!s) co_return s;
  check(st.stx_size == sizeof text && std::memcmp(back, text, sizeof text) == 0, "round trip");
  co_return co_await f->close();  // closes on the ring; the destructor would close synchronously
}
// doc-end: basics

// doc-begin: paths
coil::task<coil::result<void>> paths(const std::string& dir) {
  const std::string sub = dir + "/sub", a = sub + "/a", b = sub + "/b";
  auto m = co_await coil::mkdir(sub.c_str(), 0700);
  if (!m) co_return m;
  auto f = co_await coil::file::create(a.c_str());
  if (!f) co_return coil::fail(f.error());
  auto moved = co_await coil::rename(a.c_str(), b.c_str());
  if (!moved) co_return moved;
  struct statx st;
  auto gone = co_await coil::stat(a.c_str(), &st);
  check(!gone && gone.error() == std::errc::no_such_file_or_directory, "rename moved it");
  auto u = co_await coil::unlink(b.c_str());
  if (!u) co_return u;
  co_return co_await coil::rmdir(sub.c_str());
}
// doc-end: paths

// doc-begin: direct
coil::task<coil::result<void>> direct(const std::string& dir, coil::dio_engine engine) {
  const std::string path = dir + "/direct";
  auto f = co_await coil::direct_file::open(path.c_str(), O_RDWR | O_CREAT, {.engine = engine});
  if (!f && f.error() == std::errc::invalid_argument) {
    std::printf("no O_DIRECT under %s (tmpfs before Linux 6.6): skipped\n", dir.c_str());
    co_return {};
  }
  if (!f) co_return coil::fail(f.error());
  std::printf("O_DIRECT: %s\n", coil::describe(f->alignment()).c_str());

  const uint32_t unit = f->alignment().offset;
  auto buf = coil::dma_buffer::allocate(2 * unit);  // page-aligned, zero-filled
  if (!buf) co_return coil::fail(buf.error());
  std::memset(buf->data(), 'd', buf->size());
  auto w = co_await f->write_at(buf->span(), 0, coil::write_sync::dsync);
  if (!w) co_return coil::fail(w.error());

  // Checked before submission: a misaligned request never reaches the kernel.
  auto bad = co_await f->read_at(buf->subspan(1, unit), 0);
  check(!bad && bad.error() == coil::errc::misaligned, "misaligned");
  if (!bad) std::printf("%s\n", f->explain(bad.error()).c_str());

  auto r = co_await f->read_at(buf->subspan(unit, unit), unit);
  if (!r) co_return coil::fail(r.error());
  check(*r == unit, "direct read");
  co_return {};
}
// doc-end: direct

coil::task<void> run_all(std::string dir) {
  auto b = co_await basics(dir);
  check(static_cast<bool>(b), "basics");
  auto p = co_await paths(dir);
  check(static_cast<bool>(p), "paths");
  for (auto engine : {coil::dio_engine::uring, coil::dio_engine::aio}) {
    auto d = co_await direct(dir, engine);
    if (!d) std::fprintf(stderr, "direct: %s\n", d.error().message().c_str());
    check(static_cast<bool>(d), "direct");
  }
}

}  // namespace

int main() {
  example::temp_dir dir;
  auto rt = coil::runtime::create();
  if (!rt || !dir.ok()) return 1;
  (*rt)->block_on(run_all(dir.path()));
  return example::exit_code();
}
