// Names and the coarse clock behind the drivers' statistics and listings.
#include <time.h>

#include <liburing.h>

#include "coil/io/stats.hpp"

namespace coil {
namespace {

// Indexed by io_uring opcode, in the kernel's order (checked below).
constexpr const char* opcode_names[] = {
    "nop",
    "readv",
    "writev",
    "fsync",
    "read_fixed",
    "write_fixed",
    "poll_add",
    "poll_remove",
    "sync_file_range",
    "sendmsg",
    "recvmsg",
    "timeout",
    "timeout_remove",
    "accept",
    "async_cancel",
    "link_timeout",
    "connect",
    "fallocate",
    "openat",
    "close",
    "files_update",
    "statx",
    "read",
    "write",
    "fadvise",
    "madvise",
    "send",
    "recv",
    "openat2",
    "epoll_ctl",
    "splice",
    "provide_buffers",
    "remove_buffers",
    "tee",
    "shutdown",
    "renameat",
    "unlinkat",
    "mkdirat",
    "symlinkat",
    "linkat",
    "msg_ring",
    "fsetxattr",
    "setxattr",
    "fgetxattr",
    "getxattr",
    "socket",
    "uring_cmd",
    "send_zc",
    "sendmsg_zc",
};
static_assert(sizeof opcode_names / sizeof *opcode_names == IORING_OP_SENDMSG_ZC + 1);
static_assert(IORING_OP_READ == 22 && IORING_OP_SEND_ZC == 47);

}  // namespace

const char* opcode_name(uint8_t opcode) noexcept {
  if (opcode < sizeof opcode_names / sizeof *opcode_names) return opcode_names[opcode];
  return "unknown";
}

uint32_t coarse_clock_ms() noexcept {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<uint32_t>(static_cast<uint64_t>(ts.tv_sec) * 1000u + static_cast<uint64_t>(ts.tv_nsec) / 1'000'000u);
}

}  // namespace coil
