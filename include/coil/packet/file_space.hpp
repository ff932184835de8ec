#pragma once
// file_space: a coil::file as an I/O space, with automatic batching. Views
// submitted during one loop turn are queued; the first one spawns a flush
// task that runs next turn (after every task ready now had its go), sorts
// the queue by offset and coalesces adjacent fragments into one preadv or
// pwritev (at most IOV_MAX segments and max_op_bytes per operation).
// Overlapping reads share one transfer: the overlapped bytes are copied from
// the fragment that read them. Overlapping writes are not merged (their order
// is undefined, as for any concurrent writes). Short transfers are retried
// for the remainder; end of file fails the rest with errc::unexpected_eof
// (reads) and a zero-byte write with errc::write_zero.
//
// Steady state allocates nothing: the queue and batch buffers keep their
// capacity and are recycled; flush and per-operation tasks use the frame
// allocator. The space must outlive its packets and be used from one thread
// at a time.
//
// A packet destroyed mid-flight (its frame torn down by cancellation or
// runtime shutdown) waits for the kernel operations covering its bytes; other
// packets' fragments batched with it into the same operation may then fail
// with operation_canceled.
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "coil/core/intrusive_list.hpp"
#include "coil/fs/file.hpp"
#include "coil/packet/space.hpp"

namespace coil::packet {

struct file_space_options {
  uint32_t max_iov = IOV_MAX;            // segments per kernel operation
  uint64_t max_op_bytes = 1u << 20;     // bytes per kernel operation (a single larger fragment is not split)
  bool coalesce = true;                 // false: one kernel operation per fragment (for comparison)
};

struct file_space_stats {
  uint64_t fragments = 0;    // views submitted
  uint64_t kernel_ops = 0;   // preadv/pwritev issued (retries of short transfers included)
  uint64_t flushes = 0;      // batches (loop turns with work)
  uint64_t bytes = 0;        // bytes transferred
  // Requests in per kernel operation out.
  double batching_factor() const noexcept {
    return kernel_ops == 0 ? 0.0 : static_cast<double>(fragments) / static_cast<double>(kernel_ops);
  }
};

// A coil::file as an I/O space, batching each loop turn's views (see the
// file description).
class file_space final : public space {
 public:
  explicit file_space(coil::file f, file_space_options opts = {});
  ~file_space() override;
  file_space(const file_space&) = delete;
  file_space& operator=(const file_space&) = delete;

  void submit(view v) noexcept override;

  coil::file& file() noexcept { return file_; }
  const file_space_stats& stats() const noexcept { return stats_; }

  struct batch;
  // Links the space into its thread's registry (for abandoned packets).
  struct registry_hook : list_hook {
    file_space* owner = nullptr;
  };

 private:
  friend struct file_space_access;
  registry_hook hook_;
  const void* home_ = nullptr;  // the registry hook_ is in
  coil::file file_;
  file_space_options opts_;
  file_space_stats stats_;
  std::vector<view> queue_;                  // this turn's views
  std::vector<std::unique_ptr<batch>> batches_;  // every batch ever made
  std::vector<batch*> free_;                 // the idle ones
  bool flush_scheduled_ = false;
};

}  // namespace coil::packet
