// Guide: packet.md. A virtual address space mapped onto a stripe set of two
// files, with a hole: partial success, typed reads, batching, blocking forms.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include <coil/coil.hpp>

#include "example_util.hpp"

namespace pk = coil::packet;

namespace {

using example::check;

coil::file open_rw(const std::string& path) {
  return coil::file(coil::unique_fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)));
}

// doc-begin: tree
// Virtual [0x1000, 0x1400) -> a RAID-0 pair of files in 64-byte stripes;
// [0x1400, 0x1500) is mapped to nothing.
struct storage {
  pk::file_space disk0, disk1;
  pk::striped_space stripes{{&disk0, &disk1}, 64};
  pk::mapped_space virt;

  storage(coil::file a, coil::file b) : disk0(std::move(a)), disk1(std::move(b)) {
    auto m = virt.map(0x1000, 0x400, stripes, 0);
    check(static_cast<bool>(m), "map");
  }
};
// doc-end: tree

// doc-begin: outcome
coil::task<void> partial_success(storage& s) {
  std::vector<std::byte> data(0x400, std::byte{0x5a});
  pk::outcome w = co_await pk::write(s.virt, 0x1000, data);  // fans out over both files
  check(w.all_ok(), "write");

  std::vector<std::byte> buf(0x200);
  pk::outcome r = co_await pk::read(s.virt, 0x1300, buf);  // the second half is a hole
  check(!r.all_ok() && r.ok_prefix() == 0x100 && r.failed_bytes() == 0x100, "partial read");
  for (const pk::failed_range& f : r.failures()) {
    // [256, 512) of the packet: coil::errc::unmapped
    std::printf("bytes [%llu, %llu): %s\n", static_cast<unsigned long long>(f.range.offset),
                static_cast<unsigned long long>(f.range.end()), f.error.message().c_str());
  }
  r.for_each_ok([](pk::byte_range ok) { check(ok.offset == 0 && ok.len == 0x100, "ok range"); });
}
// doc-end: outcome

// doc-begin: typed
struct header {
  uint32_t magic;
  uint32_t count;
};

coil::task<coil::result<header>> typed(storage& s) {
  auto w = co_await pk::write_value(s.virt, 0x1000, header{0xc011, 3});
  if (!w) co_return coil::fail(w.error());
  co_return co_await pk::read_value<header>(s.virt, 0x1000);  // the first failed byte's error, if any
}
// doc-end: typed

// doc-begin: batching
// A gather of 16 neighbouring 64-byte objects: each request is a packet of
// its own, all started in the same loop turn, so the file spaces sort them
// and issue a few preadv calls instead of 16 reads.
coil::task<void> gather(storage& s) {
  std::vector<std::byte> objects(16 * 64);
  std::vector<pk::read_request> reqs(16);
  for (std::size_t i = 0; i < reqs.size(); ++i) {
    reqs[i].address = 0x1000 + i * 64;
    reqs[i].buf = std::span(objects).subspan(i * 64, 64);
  }
  const pk::file_space_stats before = s.disk0.stats();
  auto failed = co_await pk::read_all(s.virt, reqs);  // how many requests had failed bytes
  const uint64_t fragments = s.disk0.stats().fragments - before.fragments;
  const uint64_t ops = s.disk0.stats().kernel_ops - before.kernel_ops;
  std::printf("disk0: %llu fragments in %llu kernel operations\n", static_cast<unsigned long long>(fragments),
              static_cast<unsigned long long>(ops));
  check(failed && *failed == 0 && reqs[3].result.all_ok() && ops < fragments, "batching");
}
// doc-end: batching

// doc-begin: each
// Each fragment is reported as it ends, in completion order, so the data that
// has arrived can be used before the slowest backend answers.
coil::task<void> streaming(storage& s) {
  std::vector<std::byte> buf(0x200);
  uint64_t arrived = 0, failed = 0;
  pk::outcome o = co_await pk::read_each(s.virt, 0x1300, buf, [&](pk::byte_range r, std::error_code e) {
    (e ? failed : arrived) += r.len;  // r.offset counts from the packet's first byte
  });
  check(arrived == 0x100 && failed == 0x100 && o.failed_bytes() == failed, "read_each");
}
// doc-end: each

// doc-begin: mapped
// Reads of one file through a mapping of it; writes and end-of-file answers
// still come from the file_space underneath.
coil::task<void> mapped(pk::file_space& fs) {
  std::vector<std::byte> data(4096, std::byte{0x42});
  pk::outcome w = co_await pk::write(fs, 0, data);
  check(w.all_ok(), "write the file");
  auto m = pk::mmap_space::open(fs);  // result<std::unique_ptr<mmap_space>>
  check(static_cast<bool>(m), "mmap_space::open");  // EACCES: not open for reading; EINVAL: not a regular file
  pk::mmap_space& ms = **m;
  std::vector<std::byte> buf(100);
  pk::outcome r = co_await pk::read(ms, 4050, buf);  // 46 bytes, then the end of the file
  check(r.ok_prefix() == 46 && r.first_error() == coil::errc::unexpected_eof, "mapped read");
  check(ms.stats().mapped_reads == 1 && ms.stats().forwarded == 1, "the tail went to the file");
}
// doc-end: mapped

}  // namespace

int main() {
  example::temp_dir dir;
  {
    storage s(open_rw(dir.file("disk0")), open_rw(dir.file("disk1")));
    // doc-begin: blocking
    // From plain code (no runtime on this thread): the same packets, run on
    // the thread's private runtime (coil::block). Inside a runtime this fails with
    // errc::in_runtime instead of deadlocking.
    std::vector<std::byte> zeros(0x400);
    coil::result<pk::outcome> o = pk::write_blocking(s.virt, 0x1000, zeros);
    check(o && o->all_ok(), "write_blocking");
    coil::result<uint32_t> magic = pk::block(pk::read_value<uint32_t>(s.virt, 0x1000));
    check(magic && *magic == 0, "block(read_value)");
    // doc-end: blocking
    auto rt = coil::runtime::create();
    if (!rt) return 1;
    (*rt)->block_on(partial_success(s));
    auto h = (*rt)->block_on(typed(s));
    check(h && h->magic == 0xc011 && h->count == 3, "typed");
    (*rt)->block_on(gather(s));
    (*rt)->block_on(streaming(s));
    pk::file_space one(open_rw(dir.file("mapped")));
    (*rt)->block_on(mapped(one));
  }
  return example::exit_code();
}
