// vmem_walk [sync|async|mmap|both] [IMAGE]
//
// Walks a linked list through a virtual address space that exists only as a
// page table over a file, the way a memory forensics tool walks a process in
// a physical memory dump. The program first writes IMAGE (default: a temp
// file): a header, 4 KiB "physical" frames, and a page table mapping virtual
// pages to scattered frames, with some pages unmapped. It then rebuilds the
// translation as a packet::mapped_space over a packet::file_space and follows
// the list: nodes that straddle two pages are read as one packet split over
// two frames; bytes on unmapped pages fail with errc::unmapped while the rest
// of the node still arrives. Both forms run the same packets: `sync` with the
// blocking calls from plain code, `async` with co_await on a runtime; `mmap`
// is `async` with the frames read through a packet::mmap_space (copies out of
// a mapping of the image, no system call per node). The
// program checks what it read against what it wrote and exits non-zero on
// any difference.
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "coil/coil.hpp"

namespace {

using namespace coil;

constexpr uint64_t page_size = 4096;
constexpr uint64_t frames = 48;    // physical frames in the image
constexpr uint64_t vpages = 32;    // virtual pages covered by the page table
constexpr uint64_t vbase = 0x400000;
constexpr uint64_t frames_offset = page_size;  // frame f is at frames_offset + f * page_size
constexpr uint64_t table_offset = frames_offset + frames * page_size;
constexpr std::array<uint64_t, 4> unmapped_pages = {5, 11, 19, 26};

struct header {
  char magic[8];
  uint64_t frames;
  uint64_t vpages;
  uint64_t vbase;
  uint64_t table_offset;
  uint64_t head;  // virtual address of the first node
};

struct node {
  uint64_t next;  // virtual address of the next node, 0 at the end
  uint32_t id;
  uint32_t value;
  char name[32];
};

// A page table entry: frame + 1, or 0 for an unmapped page.
using pte = uint64_t;

// Deterministic everywhere (std::shuffle's algorithm is the library's choice).
struct lcg {
  uint64_t s;
  uint64_t next() { return (s = s * 6364136223846793005ull + 1442695040888963407ull) >> 33; }
};

bool is_unmapped(uint64_t vpage) {
  for (uint64_t u : unmapped_pages) {
    if (u == vpage) return true;
  }
  return false;
}

// What the builder put where, so the walk can be checked.
struct expected {
  std::vector<uint64_t> addresses;  // nodes in list order; the last one is on an unmapped page
  std::vector<node> nodes;
};

// Node addresses: most inside a page, two straddling into the next mapped
// page (one packet, two frames), one whose tail lies on an unmapped page,
// and the last one entirely on an unmapped page (the walk stops there).
std::vector<uint64_t> node_addresses() {
  auto v = [](uint64_t page, uint64_t off) { return vbase + page * page_size + off; };
  return {v(0, 0x40),   v(7, 0x800), v(3, 0xff0),  v(12, 0x100), v(9, 0x3a8), v(4, 0xfe8),
          v(20, 0x10),  v(30, 0x7c0), v(10, 0xff0), v(2, 0x200),  v(26, 0x80)};
}

result<expected> build_image(const std::string& path) {
  expected want;
  std::vector<std::byte> image(table_offset + vpages * sizeof(pte));
  lcg r{0xc011};
  for (auto& b : image) b = static_cast<std::byte>(r.next());  // garbage in unused frames
  // Scatter the mapped virtual pages over the frames.
  std::array<uint64_t, frames> perm;
  for (uint64_t i = 0; i < frames; ++i) perm[i] = i;
  for (uint64_t i = frames - 1; i > 0; --i) std::swap(perm[i], perm[r.next() % (i + 1)]);
  std::vector<pte> table(vpages, 0);
  for (uint64_t p = 0; p < vpages; ++p) {
    if (!is_unmapped(p)) table[p] = perm[p] + 1;
  }
  std::memcpy(image.data() + table_offset, table.data(), vpages * sizeof(pte));
  // Writes len bytes at a virtual address through the table; bytes on
  // unmapped pages are dropped (the "swapped out" part of memory).
  auto poke = [&](uint64_t vaddr, const void* src, uint64_t len) {
    for (uint64_t i = 0; i < len; ++i) {
      const uint64_t vp = (vaddr + i - vbase) / page_size;
      if (table[vp] == 0) continue;
      const uint64_t at = frames_offset + (table[vp] - 1) * page_size + (vaddr + i - vbase) % page_size;
      image[at] = static_cast<const std::byte*>(src)[i];
    }
  };
  want.addresses = node_addresses();
  for (std::size_t i = 0; i < want.addresses.size(); ++i) {
    node n{};
    n.next = i + 1 < want.addresses.size() ? want.addresses[i + 1] : 0;
    n.id = static_cast<uint32_t>(i);
    n.value = static_cast<uint32_t>(1000 + 37 * i);
    std::snprintf(n.name, sizeof n.name, "task-%zu", i);
    poke(want.addresses[i], &n, sizeof n);
    want.nodes.push_back(n);
  }
  header h{{'C', 'O', 'I', 'L', 'V', 'M', 'E', 'M'}, frames, vpages, vbase, table_offset, want.addresses[0]};
  std::memcpy(image.data(), &h, sizeof h);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail(errno_code(errno));
  unique_fd owned(fd);
  if (::pwrite(fd, image.data(), image.size(), 0) != static_cast<ssize_t>(image.size())) return fail(errno_code(errno));
  return want;
}

// The translation: one region per mapped page, onto its frame in the file.
result<void> load_page_table(packet::mapped_space& vm, packet::space& file, const header& h,
                             std::span<const pte> table) {
  for (uint64_t p = 0; p < table.size(); ++p) {
    if (table[p] == 0) continue;
    auto m = vm.map(h.vbase + p * page_size, page_size, file, frames_offset + (table[p] - 1) * page_size);
    if (!m) return m;
  }
  return {};
}

// What one node read produced, printed the same way by both forms.
struct walk_state {
  const expected* want;
  std::size_t visited = 0;
  std::size_t partial = 0;
  uint64_t value_sum = 0;
  bool mismatch = false;
};

// Prints one node and returns the address of the next one (0: stop).
uint64_t report(walk_state& w, uint64_t at, const node& n, const packet::outcome& o) {
  const std::size_t i = w.visited++;
  const node& want = w.want->nodes.at(i);
  const uint64_t first_page = (at - vbase) / page_size, last_page = (at + sizeof(node) - 1 - vbase) / page_size;
  std::printf("  node at 0x%llx (page%s %llu%s%s):", static_cast<unsigned long long>(at),
              first_page != last_page ? "s" : "", static_cast<unsigned long long>(first_page),
              first_page != last_page ? "-" : "",
              first_page != last_page ? std::to_string(last_page).c_str() : "");
  if (o.all_ok()) {
    std::printf(" id %u, value %u, name '%.*s'\n", n.id, n.value, static_cast<int>(sizeof n.name), n.name);
    w.value_sum += n.value;
    w.mismatch |= std::memcmp(&n, &want, sizeof n) != 0;
    return n.next;
  }
  std::printf(" %llu of %zu bytes missing\n", static_cast<unsigned long long>(o.failed_bytes()), sizeof(node));
  for (const packet::failed_range& f : o.failures()) {
    const uint64_t a = at + f.range.offset;
    std::printf("    bytes %llu-%llu: page %llu (0x%llx) %s\n", static_cast<unsigned long long>(f.range.offset),
                static_cast<unsigned long long>(f.range.end() - 1), static_cast<unsigned long long>((a - vbase) / page_size),
                static_cast<unsigned long long>(a & ~(page_size - 1)), f.error.message().c_str());
    w.mismatch |= f.error != errc::unmapped || !is_unmapped((a - vbase) / page_size);
  }
  // The fields that did arrive are still usable: here, the link.
  if (o.ok_prefix() < sizeof n.next) return 0;
  ++w.partial;
  w.mismatch |= n.next != want.next || n.id != want.id;
  std::printf("    id %u and the link survived; following it\n", n.id);
  return n.next;
}

int complain(const char* what, std::error_code ec) {
  std::fprintf(stderr, "vmem_walk: %s: %s\n", what, ec.message().c_str());
  return 1;
}

int finish(const char* form, const walk_state& w, const packet::file_space& fs, const packet::mmap_space* ms = nullptr) {
  const bool ok = !w.mismatch && w.visited == w.want->addresses.size();
  std::printf("walk (%s): %zu nodes visited, %zu partial, value sum %llu, %llu fragments in %llu kernel reads",
              form, w.visited, w.partial, static_cast<unsigned long long>(w.value_sum),
              static_cast<unsigned long long>(fs.stats().fragments), static_cast<unsigned long long>(fs.stats().kernel_ops));
  if (ms != nullptr) std::printf(", %llu mapped reads", static_cast<unsigned long long>(ms->stats().mapped_reads));
  std::printf(": %s\n", ok ? "OK" : "MISMATCH");
  return ok ? 0 : 1;
}

// ---- sync: plain calls, each running its packet on a private runtime -----------------

int walk_sync(const std::string& path, const expected& want) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return complain("open", errno_code(errno));
  packet::file_space fs{file(unique_fd(fd))};
  header h;
  std::vector<pte> table(vpages);
  auto hr = packet::block(packet::read_into(fs, 0, std::as_writable_bytes(std::span(&h, 1))));
  auto tr = packet::block(packet::read_into(fs, table_offset, std::as_writable_bytes(std::span(table))));
  if (!hr || !tr) return complain("reading the page table", hr ? tr.error() : hr.error());
  packet::mapped_space vm;
  if (!load_page_table(vm, fs, h, table)) return 1;
  walk_state w{&want};
  for (uint64_t at = h.head; at != 0;) {
    node n{};
    auto o = packet::read_blocking(vm, at, std::as_writable_bytes(std::span(&n, 1)));
    if (!o) return complain("read", o.error());
    at = report(w, at, n, *o);
  }
  return finish("sync", w, fs);
}

// ---- async: the same packets, awaited ------------------------------------------------

task<int> walk_async(const std::string& path, const expected& want, bool mapped) {
  auto f = co_await file::open(path.c_str());
  if (!f) co_return complain("open", f.error());
  packet::file_space fs(std::move(*f));
  std::unique_ptr<packet::mmap_space> ms;
  if (mapped) {
    auto m = packet::mmap_space::open(fs);
    if (!m) co_return complain("mmap_space::open", m.error());
    ms = std::move(*m);
  }
  packet::space& frames = mapped ? static_cast<packet::space&>(*ms) : fs;
  // The header and the table in one turn: two packets, batched by the space.
  header h;
  std::vector<pte> table(vpages);
  auto [hr, tr] = co_await when_all(packet::read_into(fs, 0, std::as_writable_bytes(std::span(&h, 1))),
                                    packet::read_into(fs, table_offset, std::as_writable_bytes(std::span(table))));
  if (!hr || !tr) co_return complain("reading the page table", hr ? tr.error() : hr.error());
  packet::mapped_space vm;
  if (!load_page_table(vm, frames, h, table)) co_return 1;
  walk_state w{&want};
  for (uint64_t at = h.head; at != 0;) {
    node n{};
    const packet::outcome o = co_await packet::read(vm, at, std::as_writable_bytes(std::span(&n, 1)));
    at = report(w, at, n, o);
  }
  co_return finish(mapped ? "mmap" : "async", w, fs, ms.get());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string form = argc > 1 ? argv[1] : "both";
  if (argc > 3 || (form != "sync" && form != "async" && form != "mmap" && form != "both")) {
    std::fprintf(stderr, "usage: vmem_walk [sync|async|mmap|both] [IMAGE]\n");
    return 2;
  }
  std::string path;
  bool temp = false;
  if (argc > 2) {
    path = argv[2];
  } else {
    const char* dir = std::getenv("TMPDIR");
    path = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/vmem_walk." + std::to_string(::getpid());
    temp = true;
  }
  auto want = build_image(path);
  if (!want) return complain("writing the image", want.error());
  std::printf("image %s: %llu frames of %llu bytes, %llu virtual pages at 0x%llx, %zu unmapped\n", path.c_str(),
              static_cast<unsigned long long>(frames), static_cast<unsigned long long>(page_size),
              static_cast<unsigned long long>(vpages), static_cast<unsigned long long>(vbase), unmapped_pages.size());
  int status = 0;
  if (form == "sync" || form == "both") status |= walk_sync(path, *want);
  if (form != "sync") {
    auto rt = runtime::create();
    if (!rt) return complain("runtime", rt.error());
    if (form != "mmap") status |= (*rt)->block_on(walk_async(path, *want, false));
    if (form != "async") status |= (*rt)->block_on(walk_async(path, *want, true));
  }
  if (temp) ::unlink(path.c_str());
  return status;
}
