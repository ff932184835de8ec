#include "coil/io/fault.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "coil/io/op_state.hpp"
#include "coil/io/ops.hpp"
#include "coil/io/uring_driver.hpp"

namespace coil {
namespace {

// ---- the spec -----------------------------------------------------------------

bool bad(std::string* why, std::string msg) {
  if (why != nullptr) *why = std::move(msg);
  return false;
}

bool parse_item(const std::string& item, fault_options& o, std::string* why) {
  const auto eq = item.find('=');
  if (eq == std::string::npos) return bad(why, "'" + item + "' is not KIND=VALUE");
  const std::string key = item.substr(0, eq);
  const std::string val = item.substr(eq + 1);
  char* end = nullptr;
  if (key == "delay_turns") {
    const unsigned long n = std::strtoul(val.c_str(), &end, 10);
    if (val.empty() || *end != '\0' || n < 1 || n > 7) return bad(why, "delay_turns must be 1..7, not '" + val + "'");
    o.delay_turns = static_cast<unsigned>(n);
    return true;
  }
  double* p = key == "eio"          ? &o.eio
              : key == "enospc"     ? &o.enospc
              : key == "eagain"     ? &o.eagain
              : key == "econnreset" ? &o.econnreset
              : key == "short"      ? &o.short_io
              : key == "delay"      ? &o.delay
              : key == "reorder"    ? &o.reorder
              : key == "ecanceled"  ? &o.ecanceled
                                    : nullptr;
  if (p == nullptr) {
    return bad(why, "unknown fault '" + key +
                        "' (expected eio, enospc, eagain, econnreset, short, delay, reorder, ecanceled or delay_turns)");
  }
  const double v = std::strtod(val.c_str(), &end);
  if (val.empty() || *end != '\0' || !(v >= 0 && v <= 1)) {
    return bad(why, key + " needs a probability in [0, 1], not '" + val + "'");
  }
  *p = v;
  return true;
}

// ---- which operations may see what --------------------------------------------

enum class fd_kind : uint8_t { other, file, direct, pipe, stream, dgram };

fd_kind kind_of(int fd) noexcept {
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0) return fd_kind::other;
  if (S_ISREG(st.st_mode)) return (::fcntl(fd, F_GETFL) & O_DIRECT) ? fd_kind::direct : fd_kind::file;
  if (S_ISFIFO(st.st_mode)) return fd_kind::pipe;
  if (!S_ISSOCK(st.st_mode)) return fd_kind::other;  // eventfds, ttys, ...
  int type = 0;
  socklen_t len = sizeof type;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0) return fd_kind::other;
  return type == SOCK_STREAM ? fd_kind::stream : fd_kind::dgram;
}

enum op_class : uint8_t {
  none = 0,
  data = 1,      // moves bytes
  writes = 2,    // changes the file or sends
  sock = 4,      // send/recv family
  sync = 8,      // fsync, fallocate
  sqe_len = 16,  // the SQE's len is the byte (or iovec) count: can be shortened
};

unsigned class_of(uint8_t opcode) noexcept {
  switch (opcode) {
    case IORING_OP_READ:
    case IORING_OP_READ_FIXED:
    case IORING_OP_READV: return data | sqe_len;
    case IORING_OP_WRITE:
    case IORING_OP_WRITE_FIXED:
    case IORING_OP_WRITEV: return data | writes | sqe_len;
    case IORING_OP_RECV: return data | sock | sqe_len;
    case IORING_OP_SEND: return data | writes | sock | sqe_len;
    case IORING_OP_RECVMSG: return data | sock;
    case IORING_OP_SENDMSG: return data | writes | sock;
    case IORING_OP_FSYNC:
    case IORING_OP_FALLOCATE: return writes | sync;
    default: return none;
  }
}

// ---- shortened operations -----------------------------------------------------
// A shortened op runs through a copy of its vtable whose prep/perform cap the
// length at c.res (unused between push and completion). Copies live for the
// process: a completion may keep pointing at one after its driver is gone.

struct wrapped_vtable {
  op_vtable v;  // first: a completion's ops points here
  const op_vtable* orig;
};

const wrapped_vtable& unwrapped(const op_vtable* v) noexcept { return *reinterpret_cast<const wrapped_vtable*>(v); }

uint32_t cap_of(const completion& c, uint32_t len) noexcept {
  return c.res > 0 && len > static_cast<uint32_t>(c.res) ? static_cast<uint32_t>(c.res) : len;
}

void short_prep(completion& c, io_uring_sqe& sqe) noexcept {
  unwrapped(c.ops).orig->prep(c, sqe);
  sqe.len = cap_of(c, sqe.len);  // bytes, or iovecs for readv/writev
}

// The readiness form: the SQE the op would fill says what to do (c.fd, not
// sqe.fd, which may be a registered-file slot).
int32_t short_perform(completion& c, bool nowait) noexcept {
  const op_vtable& orig = *unwrapped(c.ops).orig;
  io_uring_sqe s{};
  orig.prep(c, s);
  const uint32_t len = cap_of(c, s.len);
  void* addr = reinterpret_cast<void*>(static_cast<uintptr_t>(s.addr));
  const int fd = c.fd;
  const int dontwait = nowait ? MSG_DONTWAIT : 0;
  iovec one{addr, len};
  const iovec* iov = &one;
  int cnt = 1;
  if (s.opcode == IORING_OP_READV || s.opcode == IORING_OP_WRITEV) {
    iov = static_cast<const iovec*>(addr);
    cnt = static_cast<int>(len);
  }
  switch (s.opcode) {
    case IORING_OP_READ:
    case IORING_OP_READ_FIXED:
    case IORING_OP_READV:
      return ops::detail::rw_at(fd, s.off, nowait, POLLIN, [&](off_t o, int f) { return ::preadv2(fd, iov, cnt, o, f); });
    case IORING_OP_WRITE:
    case IORING_OP_WRITE_FIXED:
    case IORING_OP_WRITEV:
      return ops::detail::rw_at(fd, s.off, nowait, POLLOUT,
                                [&](off_t o, int f) { return ::pwritev2(fd, iov, cnt, o, f); });
    case IORING_OP_SEND:
    case IORING_OP_SEND_ZC:
      return ops::detail::kernel_ret(::send(fd, addr, len, static_cast<int>(s.msg_flags) | MSG_NOSIGNAL | dontwait));
    case IORING_OP_RECV:
      return ops::detail::kernel_ret(::recv(fd, addr, len, static_cast<int>(s.msg_flags) | dontwait));
    default:
      return orig.perform(c, nowait);
  }
}

// An op the kernel answers with ECANCELED without running it: a NOP whose
// result is injected (IORING_NOP_INJECT_RESULT in nop_flags, 6.10+). Once:
// the op is its own again for the driver's resubmission.
void cancelled_prep(completion& c, io_uring_sqe& sqe) noexcept {
  c.ops = unwrapped(c.ops).orig;
  io_uring_prep_nop(&sqe);
  sqe.rw_flags = 1u << 0;  // IORING_NOP_INJECT_RESULT
  sqe.len = static_cast<uint32_t>(-ECANCELED);
}

std::mutex wrapped_mu;
wrapped_vtable wrapped[256];  // one per (op, owner, fault) vtable: a few dozen in practice
unsigned wrapped_count = 0;

bool is_wrapped(const op_vtable* v) noexcept { return v->prep == &short_prep || v->prep == &cancelled_prep; }

const op_vtable* wrap(const op_vtable* orig, void (*prep)(completion&, io_uring_sqe&) noexcept,
                      int32_t (*perform)(completion&, bool) noexcept) noexcept {
  std::lock_guard lock(wrapped_mu);
  for (unsigned i = 0; i < wrapped_count; ++i) {
    if (wrapped[i].orig == orig && wrapped[i].v.prep == prep) return &wrapped[i].v;
  }
  if (wrapped_count == std::size(wrapped)) return nullptr;  // more op kinds than expected: no fault
  wrapped_vtable& w = wrapped[wrapped_count++];
  w.v = *orig;
  w.v.prep = prep;
  w.v.perform = perform;
  w.orig = orig;
  return &w.v;
}

void unwrap(completion& c) noexcept {
  if (is_wrapped(c.ops)) c.ops = unwrapped(c.ops).orig;
}

uint64_t splitmix(uint64_t& state) noexcept {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

result<fault_options> parse_fault_spec(const char* spec, std::string* why) {
  const std::string s = spec == nullptr ? "" : spec;
  const auto colon = s.find(':');
  const std::string seed = s.substr(0, colon);
  char* end = nullptr;
  fault_options o;
  o.seed = std::strtoull(seed.c_str(), &end, 10);
  if (colon == std::string::npos || seed.empty() || *end != '\0' || seed[0] == '-') {
    bad(why, "expected SEED:KIND=P[,KIND=P...], e.g. 42:eio=0.01,short=0.05");
    return fail(std::errc::invalid_argument);
  }
  for (std::size_t at = colon + 1; at < s.size();) {
    std::size_t comma = s.find(',', at);
    if (comma == std::string::npos) comma = s.size();
    if (!parse_item(s.substr(at, comma - at), o, why)) return fail(std::errc::invalid_argument);
    at = comma + 1;
    if (at == s.size()) {
      bad(why, "trailing ','");
      return fail(std::errc::invalid_argument);
    }
  }
  o.enabled = true;
  return o;
}

fault_layer::fault_layer(const fault_options& opts) noexcept
    : opts_(opts), push_rng_(opts.seed), reap_rng_(opts.seed ^ 0x5eed5eed5eed5eedULL) {
  if (opts_.delay_turns < 1) opts_.delay_turns = 1;
  if (opts_.delay_turns > buckets - 1) opts_.delay_turns = buckets - 1;
}

fault_layer::~fault_layer() {
  failed_.clear();
  for (auto& l : delayed_) l.clear();
}

uint64_t fault_layer::next_push() noexcept { return splitmix(push_rng_); }
uint64_t fault_layer::next_reap() noexcept { return splitmix(reap_rng_); }

bool fault_layer::draw(uint64_t r, double p) const noexcept {
  return static_cast<double>(r >> 11) * 0x1.0p-53 < p;
}

bool fault_layer::holding() const noexcept {
  if (!failed_.empty()) return true;
  for (const auto& l : delayed_) {
    if (!l.empty()) return true;
  }
  return false;
}

void fault_layer::finish(completion& c, int err) noexcept {
  c.cancel_requested = c.cancel_issued = false;
  c.res = -err;
  c.cqe_flags = 0;
  detail::set_state(c, op_state::done);
  failed_.push_back(c);
}

bool fault_layer::on_push(completion& c) noexcept {
  COIL_DEBUG_ASSERT(c.state == op_state::idle && !c.linked(), "operation pushed twice (already pending)");
  unwrap(c);  // pushed again after a shortened run
  if (paused_ || c.ops->on_cqe != nullptr || c.ops->consumes_fd) return false;
  const unsigned cls = class_of(c.ops->opcode);
  const bool cancellable = inject_cancels_ && opts_.ecanceled > 0 && uring_driver::resubmits_after_cancel(c.ops->opcode);
  if (cls == none && !cancellable) return false;
  ++stats_.ops;
  // Two draws per op, whatever happens: later decisions do not depend on
  // earlier ones' outcomes, only on the sequence of pushes.
  const double u = static_cast<double>(next_push() >> 11) * 0x1.0p-53;
  const uint64_t r = next_push();
  const bool file_io = !(cls & sock);
  struct choice {
    double p;
    bool applies;
    int err;  // 0: short transfer
  };
  const choice choices[] = {
      {opts_.eio, file_io, EIO},
      {opts_.enospc, (cls & writes) && file_io, ENOSPC},
      {opts_.eagain, (cls & data) != 0, EAGAIN},
      {opts_.econnreset, (cls & data) != 0, ECONNRESET},
      {opts_.short_io, (cls & sqe_len) != 0, 0},
      {opts_.ecanceled, cancellable, ECANCELED},  // last: earlier kinds draw as without it
  };
  double acc = 0;
  const choice* picked = nullptr;
  for (const choice& ch : choices) {
    if (!ch.applies) continue;
    acc += ch.p;
    if (u < acc) {
      picked = &ch;
      break;
    }
  }
  if (picked == nullptr) return false;
  if (picked->err == ECANCELED) {
    const op_vtable* w = wrap(c.ops, &cancelled_prep, c.ops->perform);
    if (w == nullptr) return false;
    c.ops = w;
    ++stats_.ecanceled;
    return false;  // the driver submits it: the kernel answers
  }
  // Only now look at the descriptor (a system call or two, on faults only).
  const fd_kind k = kind_of(c.fd);
  switch (picked->err) {
    case EIO:
    case ENOSPC:
      if (k != fd_kind::file && k != fd_kind::direct) return false;
      break;
    case EAGAIN:
      if (k == fd_kind::other) return false;
      break;
    case ECONNRESET:
      if (k != fd_kind::stream) return false;
      break;
    default: {  // short: where the kernel itself may stop early
      if (k != fd_kind::file && k != fd_kind::pipe && k != fd_kind::stream) return false;
      io_uring_sqe s{};
      c.ops->prep(c, s);
      if (s.len < 2) return false;
      const op_vtable* w = wrap(c.ops, &short_prep, &short_perform);
      if (w == nullptr) return false;
      c.res = static_cast<int32_t>(1 + r % (s.len - 1));
      c.ops = w;
      ++stats_.short_io;
      return false;
    }
  }
  switch (picked->err) {
    case EIO: ++stats_.eio; break;
    case ENOSPC: ++stats_.enospc; break;
    case EAGAIN: ++stats_.eagain; break;
    default: ++stats_.econnreset; break;
  }
  finish(c, picked->err);
  return true;
}

std::size_t fault_layer::on_reap(intrusive_list<completion>& got, intrusive_list<completion>& out) noexcept {
  ++turn_;
  intrusive_list<completion> batch;
  batch.splice_back(delayed_[turn_ % buckets]);
  batch.splice_back(failed_);
  while (completion* c = got.pop_front()) {
    unwrap(*c);
    if (!paused_ && opts_.delay > 0 && draw(next_reap(), opts_.delay)) {
      const uint64_t d = 1 + next_reap() % opts_.delay_turns;
      delayed_[(turn_ + d) % buckets].push_back(*c);
      ++stats_.delayed;
      continue;
    }
    batch.push_back(*c);
  }
  if (!paused_ && opts_.reorder > 0 && !batch.empty() && draw(next_reap(), opts_.reorder)) {
    // Shuffle the first 64 (enough to break any order assumption).
    completion* a[64];
    std::size_t n = 0;
    while (n < std::size(a) && !batch.empty()) a[n++] = batch.pop_front();
    for (std::size_t i = n; i > 1; --i) std::swap(a[i - 1], a[next_reap() % i]);
    intrusive_list<completion> shuffled;
    for (std::size_t i = 0; i < n; ++i) shuffled.push_back(*a[i]);
    shuffled.splice_back(batch);
    batch.splice_back(shuffled);
    if (n > 1) ++stats_.reordered;
  }
  std::size_t n = 0;
  while (completion* c = batch.pop_front()) {
    out.push_back(*c);
    ++n;
  }
  return n;
}

}  // namespace coil
